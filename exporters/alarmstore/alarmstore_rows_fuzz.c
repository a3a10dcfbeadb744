/* alarmstore_rows_fuzz.c: spans' attributes are external input. The first byte picks the
 * options (error_spans::services or none); the rest is an ExportTraceServiceRequest. Whatever
 * decodes must give rows whose text columns are valid UTF-8 within their sizes, whose ids are
 * hex, and the wire pre-check must say "maybe" for every request that has a run (it is the
 * only thing between a batch and being dropped unread). The bytes are also parsed as a time. */
#include <stdlib.h>
#include <string.h>

#include "alarmstore.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_utf8(const char *s, size_t max)
{
    size_t n = strlen(s);
    if (n > max) {
        abort();
    }
    const unsigned char *p = (const unsigned char *)s;
    for (size_t i = 0; i < n;) {
        size_t len = p[i] < 0x80                    ? 1
                     : p[i] >= 0xc2 && p[i] <= 0xdf ? 2
                     : p[i] >= 0xe0 && p[i] <= 0xef ? 3
                     : p[i] >= 0xf0 && p[i] <= 0xf4 ? 4
                                                    : 0;
        if (len == 0 || i + len > n) {
            abort();
        }
        for (size_t k = 1; k < len; k++) {
            if ((p[i + k] & 0xc0) != 0x80) {
                abort();
            }
        }
        i += len;
    }
}

static void check_row(const as_row_t *r)
{
    for (int c = 0; c < AS_COL_N_TEXT; c++) {
        if (r->text[c] != NULL) {
            check_utf8(r->text[c], as_text_cols[c].max_bytes);
        }
    }
    if (strspn(r->trace_id, "0123456789abcdef") != strlen(r->trace_id) ||
        strspn(r->span_id, "0123456789abcdef") != strlen(r->span_id)) {
        abort();
    }
    if (r->has_duration && !(r->duration_seconds >= 0)) {
        abort();
    }
    char t[32];
    if (r->has_start) {
        as_format_time(r->start_ns, t);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1) {
        return 0;
    }
    int64_t ns;
    (void)as_parse_time_utc((const char *)data, size, &ns);
    char *svc[] = {"svc", "fastapi-app"};
    om_strlist_t services = {.n = 2, .items = svc};
    as_extract_opts_t o = {.error_services = (data[0] & 1) ? &services : NULL};
    om_batch_t *b = NULL;
    om_err_t err = {0};
    if (om_batch_decode_proto(OM_SIG_TRACES, data + 1, size - 1, 1 << 24, &b, &err) != 0) {
        return 0;
    }
    /* The wire path is taken for batches that are still their bytes (as the exporter does). */
    bool wire = b->msg == NULL && b->raw_valid && b->n_raw == 1;
    as_rows_t wire_rows = {0};
    int wire_rc = wire ? as_rows_extract_wire(b->raw[0].data, b->raw[0].len, &o, &wire_rows) : 0;
    if (om_batch_decode(b, &err) == 0) {
        as_rows_t rows = {0};
        int rc = as_rows_extract(b->traces, &o, &rows);
        for (size_t i = 0; i < rows.n; i++) {
            check_row(&rows.v[i]);
        }
        if (rc == 0 && (rows.n > 0) != as_req_maybe(b->traces, &o)) {
            abort();
        }
        if (rc == 0 && rows.n > 0 && !as_wire_maybe(data + 1, size - 1, &o)) {
            abort();
        }
        if (wire && rc == 0 && wire_rc == 0 && !as_rows_equal(&rows, &wire_rows)) {
            abort();
        }
        as_rows_free(&rows);
    }
    as_rows_free(&wire_rows);
    om_batch_release(b);
    return 0;
}
