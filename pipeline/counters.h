/* counters: running totals of the work done (pages by how they were read,
 * model tokens and generation time), kept in the database so that every
 * worker process on every host adds to the same totals; /metrics reads them.
 *
 * Totals only grow. They are added to inside the transaction that completes a
 * job, so a job whose completion is refused (a lost lease) counts nothing and
 * a job counts once. */
#pragma once

#include "core/qerr.h"

struct db;
struct json;
struct pdftext_doc;

/* Adds one completed job: its pages by method ("text", "ocr", "none"; doc,
 * borrowed) and, when the model read the fields, the model's figures from the
 * extraction result (its "model" object; result borrowed). Call inside the
 * completing transaction. */
enum qerr counters_add_job(struct db *db, const struct pdftext_doc *doc, const struct json *result,
                           char **reterr) QUIRE_MUST_CHECK;
