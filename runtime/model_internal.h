/* model_internal: what runtime/ itself (and its tests and fuzz targets) may
 * use of the model beyond model.h. */
#pragma once

#include "runtime/model.h"

struct gguf_file;

/* Builds a model over an already opened GGUF file. On success the model owns g
 * (model_free() closes it); on failure g stays the caller's. */
enum rterror model_load_gguf(struct gguf_file *g, struct model **ret, char **reterr)
	__attribute__((warn_unused_result));
