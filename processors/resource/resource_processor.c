/* resource_processor.c: the `resource` processor, as otelcol-contrib's: the action list under
 * `attributes` (../attraction) applied, in order, to the attributes of every resource, for
 * every signal. A resource entry without a Resource gets one when an action sets an
 * attribute.
 *
 * Like `attributes`, it walks the batch read-only first (one call per resource entry) and
 * makes it editable only when an action would change a resource, so a batch it leaves alone is
 * forwarded with its wire bytes. When every action needs no value parsed (insert, update,
 * upsert, delete), a batch that is still its wire bytes is edited on the bytes instead
 * (proc_attraction_wire_apply). A batch whose edits do not fit its edit room is refused with
 * OM_ETOOBIG, never forwarded half-edited.
 *
 * Threads: OM_CAP_OFF_LOOP (om.h, "Processors off the loop thread"): the core may run consume
 * on the thread that decoded the request (gRPC's completion-queue thread, an HTTP worker), one
 * thread at a time, so that the loop thread keeps only what must be serial (issue 14). The
 * actions and the config are read-only after create; the walk's state and the warnings' rate
 * limit are this instance's and only consume touches them; the time is uv_hrtime's, not the
 * loop's cached one. */
#include <string.h>

#include "../attraction/attraction.h"

typedef struct proc_resource_cfg {
    om_seclist_t attributes; /* proc_attraction_cfg_t */
} proc_resource_cfg_t;

typedef struct proc_resource {
    const char *log_name;
    om_consumer_t next[OM_SIG_COUNT];
    proc_attraction_t *actions;
    bool needs_edit;
    uint64_t last_warn_ms;
    bool shut;
    bool wire; /* the actions can run on wire bytes */
} proc_resource_t;

static const om_field_t resource_fields[] = {
    {.key = "attributes",
     .type = OM_F_SECLIST,
     .offset = offsetof(proc_resource_cfg_t, attributes),
     .fields = proc_attraction_fields,
     .elem_size = sizeof(proc_attraction_cfg_t),
     .help = "the actions on resource attributes, applied in order"},
    {.key = NULL},
};

static int resource_validate(const void *vcfg, om_err_t *err)
{
    const proc_resource_cfg_t *cfg = vcfg;
    if (cfg->attributes.n == 0) {
        om_err_at(err, "attributes", "missing required field \"attributes\"");
        return OM_ECONFIG;
    }
    return proc_attraction_validate(&cfg->attributes, "attributes", err);
}

static void resource_destroy(void *self)
{
    proc_resource_t *p = self;
    if (p != NULL) {
        proc_attraction_free(p->actions);
        om_free(p);
    }
}

static int resource_create(const om_create_args_t *a, void **self, om_err_t *err)
{
    const proc_resource_cfg_t *cfg = a->cfg;
    proc_resource_t *p = om_calloc(1, sizeof *p);
    if (p == NULL) {
        om_err_set(err, OM_ENOMEM, "out of memory");
        return OM_ENOMEM;
    }
    p->log_name = a->log_name;
    memcpy(p->next, a->next, sizeof p->next);
    int rc = proc_attraction_new(&cfg->attributes, "attributes", &p->actions, err);
    if (rc != 0) {
        resource_destroy(p);
        return rc;
    }
    p->wire = proc_attraction_wire_ok(p->actions);
    *self = p;
    return 0;
}

static int resource_start(void *self, om_err_t *err)
{
    (void)self;
    (void)err;
    return 0;
}

static void resource_shutdown(void *self, om_done_fn done, void *arg)
{
    proc_resource_t *p = self;
    if (p->shut) {
        return;
    }
    p->shut = true;
    done(arg);
}

static int check_resource(om_item_t *it, void *arg)
{
    proc_resource_t *p = arg;
    if (!proc_attraction_would_change(p->actions, &it->attrs)) {
        return OM_KEEP;
    }
    p->needs_edit = true;
    return OM_EAGAIN; /* stop: recognised by needs_edit */
}

static int apply_resource(om_item_t *it, void *arg)
{
    proc_resource_t *p = arg;
    int rc = proc_attraction_apply(p->actions, &it->attrs);
    return rc < 0 ? rc : OM_KEEP;
}

static void warn_refused(proc_resource_t *p, int rc, const om_batch_t *b, const om_err_t *err)
{
    uint64_t now = uv_hrtime() / 1000000; /* any thread: not uv_now */
    if (p->last_warn_ms != 0 && now - p->last_warn_ms < 1000) {
        return;
    }
    p->last_warn_ms = now != 0 ? now : 1;
    OM_CLOG(p->log_name, OM_LOG_WARN, "refused a batch of %zu %s: %s", b->items,
            om_signal_item_name(b->signal), err->msg[0] != '\0' ? err->msg : om_strerror(rc));
}

static int resource_consume(void *self, om_batch_t *b)
{
    proc_resource_t *p = self;
    om_err_t err = {0};
    if (p->wire && om_batch_wire_editable(b)) {
        /* On the bytes; what that path does not follow goes the decoding way below. */
        int rc = proc_attraction_wire_apply(p->actions, b, OM_LEVEL_RESOURCE, &err);
        if (rc == 0) {
            return om_consumer_consume(&p->next[om_signal_index(b->signal)], b);
        }
        if (rc == OM_ENOMEM) {
            warn_refused(p, rc, b, &err);
            om_batch_release(b);
            return rc;
        }
        err = (om_err_t){0};
    }
    p->needs_edit = false;
    int rc = om_batch_walk(&b, OM_LEVEL_RESOURCE, check_resource, p, &err);
    if (p->needs_edit) {
        rc = om_batch_edit(&b, &err);
        rc = rc < 0 ? rc : om_batch_walk(&b, OM_LEVEL_RESOURCE, apply_resource, p, &err);
    }
    if (rc < 0) {
        warn_refused(p, rc, b, &err);
        om_batch_release(b);
        return rc;
    }
    return om_consumer_consume(&p->next[om_signal_index(b->signal)], b);
}

const om_factory_t proc_resource_factory = {
    .abi = OM_FACTORY_ABI,
    .kind = OM_PROCESSOR,
    .type = "resource",
    .help = "inserts, updates, deletes, hashes, extracts and converts resource attributes",
    .signals = OM_SIG_ALL,
    .caps = OM_CAP_MUTATES_DATA | OM_CAP_OFF_LOOP,
    .config_size = sizeof(proc_resource_cfg_t),
    .fields = resource_fields,
    .config_validate = resource_validate,
    .create = resource_create,
    .start = resource_start,
    .shutdown = resource_shutdown,
    .destroy = resource_destroy,
    .consume_traces = resource_consume,
    .consume_metrics = resource_consume,
    .consume_logs = resource_consume,
};
