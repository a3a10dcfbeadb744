/* promexp_state_fuzz.c: OTLP metrics from the wire -> the pull exporter's served state -> a
 * scrape. The first byte picks the options (suffixes, resource_to_telemetry, timestamps, a
 * namespace, const labels, OpenMetrics); the rest is an ExportMetricsServiceRequest. Whatever
 * decodes is taken twice (a second, later copy exercises the accumulation of deltas and the
 * latest-point rules), rendered, and must give a scrape made of whole lines (text) ending in
 * "# EOF" (OpenMetrics), with as many sample lines as the state says it serves at least
 * (a histogram is several lines); after metric_expiration nothing is left, and the Accept
 * header negotiation takes the same bytes as a header value. */
#include <stdlib.h>
#include <string.h>

#include "promexp.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static size_t sample_lines(const om_strbuf_t *out)
{
    size_t n = 0;
    const char *p = out->data != NULL ? out->data : "";
    while (*p != '\0') {
        const char *nl = strchr(p, '\n');
        if (nl == NULL) {
            abort(); /* a scrape is whole lines */
        }
        n += p[0] != '#';
        p = nl + 1;
    }
    return n;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1) {
        return 0;
    }
    uint8_t opt = data[0];
    char accept[64];
    size_t alen = size - 1 < sizeof accept - 1 ? size - 1 : sizeof accept - 1;
    memcpy(accept, data + 1, alen);
    accept[alen] = '\0';
    om_prom_format_t neg = om_prom_negotiate(accept, (opt & 32) != 0);
    if (neg != OM_PROM_FMT_TEXT && neg != OM_PROM_FMT_OPENMETRICS) {
        abort();
    }
    om_batch_t *b = NULL;
    om_err_t err = {0};
    if (om_batch_decode_proto(OM_SIG_METRICS, data + 1, size - 1, 1 << 24, &b, &err) != 0) {
        return 0;
    }
    if (om_batch_decode(b, &err) != 0) {
        om_batch_release(b);
        return 0;
    }
    om_label_t consts[] = {{"env", "fuzz"}, {"job", "never"}};
    promexp_opts_t o = {.ns = (opt & 16) ? "ns" : NULL,
                        .suffixes = (opt & 1) != 0,
                        .r2t = (opt & 4) != 0,
                        .send_timestamps = (opt & 8) != 0,
                        .expiration_ms = 300000,
                        .const_labels = consts,
                        .n_const_labels = (opt & 64) ? 2 : 0,
                        .log_name = "prometheus"};
    promexp_state_t *s = promexp_state_new(&o);
    if (s == NULL) {
        om_batch_release(b);
        return 0;
    }
    uint64_t now = 1700000000000u;
    int r1 = promexp_state_update(s, b, now);
    int r2 = promexp_state_update(s, b, now + 1000);
    om_batch_release(b);
    if ((r1 < 0 && r1 != OM_ENOMEM) || (r2 < 0 && r2 != OM_ENOMEM)) {
        abort();
    }
    om_prom_format_t f = (opt & 32) ? OM_PROM_FMT_OPENMETRICS : OM_PROM_FMT_TEXT;
    om_strbuf_t out;
    om_strbuf_init(&out, 0);
    promexp_state_render(s, f, now + 2000, &out);
    if (!out.failed) {
        size_t lines = sample_lines(&out);
        if (lines < promexp_state_series(s)) {
            abort();
        }
        if (f == OM_PROM_FMT_OPENMETRICS &&
            (out.len < 6 || strcmp(out.data + out.len - 6, "# EOF\n") != 0)) {
            abort();
        }
    }
    om_strbuf_free(&out);
    promexp_state_expire(s, now + 1000 + 300001);
    if (promexp_state_series(s) != 0) {
        abort();
    }
    promexp_state_free(s);
    return 0;
}
