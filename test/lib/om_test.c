#include <stdarg.h>
#include <stddef.h>
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

/* A loaded config and the YAML tree it came from: a config may point into the tree, so the
 * tree lives as long as the config. cfg is what om_test_config_load returns. */
typedef struct {
    om_config_t *yaml; /* owned */
    max_align_t cfg[]; /* f->config_size bytes, owned (and what the field table allocated) */
} loaded_t;

static char config_why[512];

/* The steps of om_test_config_load; the first problem goes to config_why. */
static int config_load(const om_factory_t *f, const char *flow, loaded_t *l)
{
    om_strbuf_t text;
    om_strbuf_init(&text, 0);
    om_strbuf_printf(&text, "c: %s\n", flow != NULL ? flow : "");
    om_diags_t d = {0};
    char *path = NULL;
    int rc = text.failed ? OM_ENOMEM
                         : om_config_load_string("t.yaml", text.data, text.len, &l->yaml, &d);
    om_strbuf_free(&text);
    /* The section's name by hand: om_kind_plural's object file would pull the factory list
     * into test programs that link no components (loadgen_test). */
    static const char *const sections[] = {"receivers", "processors", "exporters", "extensions",
                                           "connectors"};
    const char *section = (unsigned)f->kind < 5 ? sections[f->kind] : "?";
    if (rc == 0) {
        size_t n = strlen(section) + strlen(f->type) + 3;
        path = om_malloc(n);
        rc = path == NULL ? OM_ENOMEM : 0;
        if (path != NULL) {
            snprintf(path, n, "%s::%s", section, f->type);
        }
    }
    if (rc == 0) {
        rc = om_fields_apply(f->fields, l->cfg, om_node_get(l->yaml->root, "c"), path, &d);
    }
    om_free(path);
    if (d.n > 0) {
        snprintf(config_why, sizeof config_why, "%s", d.msgs[0]);
        rc = rc != 0 ? rc : OM_ECONFIG;
    } else if (rc != 0) {
        snprintf(config_why, sizeof config_why, "(%s)", om_strerror(rc));
    } else if (f->config_validate != NULL) {
        om_err_t err = {0};
        if (f->config_validate(l->cfg, &err) != 0) {
            snprintf(config_why, sizeof config_why, "%s%s%s", err.at, err.at[0] ? ": " : "",
                     err.msg);
            rc = OM_ECONFIG;
        }
    }
    om_diags_free(&d);
    return rc;
}

void *om_test_config_load(const om_factory_t *f, const char *flow, const char **why)
{
    config_why[0] = '\0';
    if (why != NULL) {
        *why = config_why;
    }
    loaded_t *l = om_calloc(1, sizeof *l + f->config_size);
    if (l == NULL) {
        snprintf(config_why, sizeof config_why, "(%s)", om_strerror(OM_ENOMEM));
        return NULL;
    }
    if (config_load(f, flow, l) != 0) {
        om_test_config_free(f, l->cfg);
        return NULL;
    }
    return l->cfg;
}

void om_test_config_free(const om_factory_t *f, void *cfg)
{
    if (cfg == NULL) {
        return;
    }
    loaded_t *l = (loaded_t *)((char *)cfg - offsetof(loaded_t, cfg));
    if (f->config_free != NULL) {
        f->config_free(cfg);
    }
    om_fields_free(f->fields, cfg);
    om_config_free(l->yaml);
    om_free(l);
}

const char *om_test_config_error(const om_factory_t *f, const char *yaml)
{
    const char *why = "";
    om_test_config_free(f, om_test_config_load(f, yaml, &why));
    return why;
}
