/* otlp_json_fuzz.c: OTLP/JSON decoding and encoding. The input is decoded as each signal;
 * whatever decodes must encode, and the encoding must be stable: decoding our own output and
 * encoding it again gives the same bytes. (One round may normalise the input, e.g. a -0 that
 * jansson reads as the integer 0, so stability is checked from the second round on.) A small
 * arena cap on every other input keeps the "too big" path reachable. */
#include <stdlib.h>
#include <string.h>

#include "om.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* decode as sig, then encode into out (reset first). 0 on success. */
static int roundtrip(om_signal_t sig, const char *in, size_t len, size_t cap, om_strbuf_t *out)
{
    om_batch_t *b = NULL;
    int rc = om_batch_decode_json(sig, in, len, cap, &b, NULL);
    if (rc != 0) {
        if (b != NULL) {
            abort(); /* a failed decode hands out nothing */
        }
        return rc;
    }
    if (b->items != om_batch_count_items(b)) {
        abort();
    }
    om_strbuf_reset(out);
    rc = om_otlp_json_encode(b, out);
    om_batch_release(b);
    return rc;
}

static void check_signal(om_signal_t sig, const char *in, size_t len, size_t cap)
{
    om_strbuf_t e1, e2, e3;
    om_strbuf_init(&e1, 64u << 20);
    om_strbuf_init(&e2, 64u << 20);
    om_strbuf_init(&e3, 64u << 20);
    if (roundtrip(sig, in, len, cap, &e1) != 0) {
        goto out;
    }
    /* Our own output always decodes (without a cap: the JSON may be smaller than its
     * decoded form); a failure here can only be out of memory. */
    int rc = roundtrip(sig, e1.data, e1.len, 0, &e2);
    if (rc != 0) {
        if (rc != OM_ENOMEM) {
            abort();
        }
        goto out;
    }
    if (e1.len == e2.len && memcmp(e1.data, e2.data, e1.len) == 0) {
        goto out;
    }
    rc = roundtrip(sig, e2.data, e2.len, 0, &e3);
    if (rc == 0 && (e2.len != e3.len || memcmp(e2.data, e3.data, e2.len) != 0)) {
        abort();
    }
out:
    om_strbuf_free(&e1);
    om_strbuf_free(&e2);
    om_strbuf_free(&e3);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    om_log_set_level(OM_LOG_NONE);
    size_t cap = (size & 1) ? 4096 : (16u << 20);
    for (int i = 0; i < OM_SIG_COUNT; i++) {
        check_signal(om_signal_from_index(i), (const char *)data, size, cap);
    }
    return 0;
}
