/* validate: checks on extracted values that a reviewer would make.
 *
 * Each check applies when the fields it needs are present, whatever the
 * document type: net + tax = total, line items sum to the net amount, each
 * line's quantity times unit price is its amount, tax lines sum to the tax,
 * receipt items sum to the total, dates are real dates and in order (issue
 * before due, birth before admission before discharge), IBAN check digits
 * (ISO 13616 mod 97), VAT numbers in their country's format, ICD-10 codes in
 * the code format, currencies known ISO 4217 codes. Amounts compare within
 * rounding (a cent, or half a cent per summed line). */
#pragma once

#include <stdbool.h>

struct json;

/* values: {"field": value, ...} (borrowed). Returns an array (json_free) of
 * {"check":name,"ok":bool,"fields":[names],"reason":text}, one per check that
 * applied; reason says what is wrong, or what was checked when ok. */
struct json *validate_values(const struct json *values);

bool validate_iban(const char *iban);     /* without spaces */
bool validate_vat_id(const char *vat_id); /* with its country prefix, without spaces */
bool validate_icd10(const char *code);
bool validate_date(const char *iso);      /* YYYY-MM-DD, a real day */
