#include <stdarg.h>
#include <stdlib.h>

#include "config.h"
#include "om.h"
#include "om_test.h"

int om_test_failed_now;
int om_test_passed, om_test_failed;

int om_test_summary(void)
{
    fprintf(stderr, "%d passed, %d failed\n", om_test_passed, om_test_failed);
    return om_test_failed == 0 ? 0 : 1;
}

void om_test_host_init(om_host_t *h, uv_loop_t *loop)
{
    om_err_t err = {0};
    if (om_host_init(h, loop, &err) != 0) {
        fprintf(stderr, "om_test_host_init: %s\n", err.msg);
        abort();
    }
}

static void host_closed(void *arg)
{
    *(bool *)arg = true;
}

void om_test_host_close(om_host_t *h)
{
    bool closed = false;
    uv_loop_t *loop = h->loop;
    om_host_close(h, host_closed, &closed);
    /* The pool's mailbox keeps the loop alive until the host is closed, so each turn either
     * makes progress or waits for a worker thread's last message. */
    while (!closed) {
        uv_run(loop, UV_RUN_ONCE);
    }
    h->loop = NULL;
}

int64_t om_test_metric(const om_host_t *h, const char *name, ...)
{
    om_label_t labels[OM_METRIC_MAX_LABELS];
    size_t n = 0;
    va_list ap;
    va_start(ap, name);
    for (const char *k = va_arg(ap, const char *); k != NULL && n < OM_METRIC_MAX_LABELS;
         k = va_arg(ap, const char *)) {
        labels[n].key = k;
        labels[n++].value = va_arg(ap, const char *);
    }
    va_end(ap);
    const om_metric_def_t *def = NULL;
    om_metric_sample_t s;
    if (om_metrics_read(h->metrics, name, labels, n, &def, &s) != 0) {
        return -1;
    }
    switch (def->type) {
    case OM_METRIC_COUNTER:
        return def->real ? (int64_t)s.value.d : (int64_t)s.value.u;
    case OM_METRIC_GAUGE:
        return def->real ? (int64_t)s.value.d : s.value.i;
    case OM_METRIC_HISTOGRAM:
        return (int64_t)s.count;
    }
    return -1;
}

const char *om_test_config_error(const om_factory_t *f, const char *yaml)
{
    static char out[512];
    out[0] = '\0';
    om_strbuf_t text;
    om_strbuf_init(&text, 0);
    om_strbuf_printf(&text, "c: %s\n", yaml);
    om_diags_t d = {0};
    om_config_t *yml = NULL;
    void *cfg = om_calloc(1, f->config_size);
    int rc = cfg == NULL || text.failed
                 ? OM_ENOMEM
                 : om_config_load_string("t.yaml", text.data, text.len, &yml, &d);
    om_strbuf_free(&text);
    if (rc == 0) {
        rc = om_fields_apply(f->fields, cfg, om_node_get(yml->root, "c"), "c", &d);
    }
    if (d.n > 0) {
        snprintf(out, sizeof out, "%s", d.msgs[0]);
    } else if (rc != 0) {
        snprintf(out, sizeof out, "(%s)", om_strerror(rc));
    } else if (f->config_validate != NULL) {
        om_err_t err = {0};
        if (f->config_validate(cfg, &err) != 0) {
            snprintf(out, sizeof out, "%s: %s", err.at, err.msg);
        }
    }
    om_diags_free(&d);
    if (cfg != NULL) {
        if (f->config_free != NULL) {
            f->config_free(cfg);
        }
        om_fields_free(f->fields, cfg);
        om_free(cfg);
    }
    om_config_free(yml);
    return out;
}
