/* attributes_processor.c: the `attributes` processor, as otelcol-contrib's: the action list
 * (../attraction) applied, in order, to the attributes of every span, log record and metric
 * data point that include/exclude let through (attributes_match.c). Span events, span links,
 * resources and scopes are not touched, as in otelcol (resources are the `resource`
 * processor's).
 *
 * The fast path: a batch whose items none of the actions would change is forwarded as it came,
 * wire bytes and all. consume first walks the batch read-only and stops at the first item an
 * action would change (proc_attraction_would_change is exact); only then is the batch made
 * editable (om_batch_edit: decoded, the wire bytes dropped, copied if shared) and walked again
 * to apply the actions. When every item changes, the read-only walk stops at the first one, so
 * the check costs one item.
 *
 * The wire path: when every action needs no value parsed (insert, update, upsert, delete) and
 * there is no include/exclude, a batch that is still its wire bytes is edited on the bytes
 * (proc_attraction_wire_apply), without decoding and encoding it; anything that path does not
 * follow goes the decoding way.
 *
 * Errors: a batch whose edits do not fit its edit room (OM_ETOOBIG) or that runs out of memory
 * is refused with that code, never forwarded half-edited (an action may be the one that
 * deletes a password).
 *
 * Threads: OM_CAP_OFF_LOOP (om.h, "Processors off the loop thread"): the core may run consume
 * on the thread that decoded the request (gRPC's completion-queue thread, an HTTP worker), one
 * thread at a time, so that the loop thread keeps only what must be serial (issue 14). The
 * actions and the config are read-only after create; the walk's state and the warnings' rate
 * limit are this instance's and only consume touches them; the time is uv_hrtime's, not the
 * loop's cached one. */
#include <string.h>

#include "attributes.h"

typedef struct proc_attributes {
    const proc_attributes_cfg_t *cfg;
    const char *log_name;
    om_consumer_t next[OM_SIG_COUNT];
    proc_attraction_t *actions;
    proc_attributes_props_t *include, *exclude;
    /* State of one walk: whether an item needs the actions (read-only walk), and the decision
     * for the metric the last data point belonged to (data points of a metric share it). */
    bool needs_edit;
    const om_metric_t *last_metric;
    bool last_skip;
    uint64_t last_warn_ms;
    bool shut;
    bool wire; /* the actions can run on wire bytes, on every item */
} proc_attributes_t;

static const om_field_t attributes_fields[] = {
    {.key = "actions",
     .type = OM_F_SECLIST,
     .offset = offsetof(proc_attributes_cfg_t, actions),
     .fields = proc_attraction_fields,
     .elem_size = sizeof(proc_attraction_cfg_t),
     .help = "the actions, applied in order"},
    {.key = "include",
     .type = OM_F_SECTION,
     .offset = offsetof(proc_attributes_cfg_t, include),
     .fields = proc_attributes_props_fields,
     .flags = OM_FF_PRESENCE,
     .present_offset = offsetof(proc_attributes_cfg_t, include_present),
     .help = "only items matching these properties are processed"},
    {.key = "exclude",
     .type = OM_F_SECTION,
     .offset = offsetof(proc_attributes_cfg_t, exclude),
     .fields = proc_attributes_props_fields,
     .flags = OM_FF_PRESENCE,
     .present_offset = offsetof(proc_attributes_cfg_t, exclude_present),
     .help = "items matching these properties are not processed"},
    {.key = NULL},
};

/* include/exclude for the signals they can apply to: the config is valid when each section
 * suits at least one signal (which ones a pipeline uses is known at create, which checks
 * again for those). */
static int validate_props(const proc_attributes_props_cfg_t *c, bool present, const char *at,
                          om_err_t *err)
{
    if (!present) {
        return 0;
    }
    unsigned ok = 0;
    for (int i = 0; i < OM_SIG_COUNT; i++) {
        om_signal_t sig = om_signal_from_index(i);
        ok |= proc_attributes_props_invalid_for(c, sig) == NULL ? (unsigned)sig : 0;
    }
    proc_attributes_props_t *m = NULL;
    int rc = proc_attributes_props_new(c, true, at, ok != 0 ? ok : OM_SIG_TRACES, &m, err);
    proc_attributes_props_free(m);
    return rc;
}

static int attributes_validate(const void *vcfg, om_err_t *err)
{
    const proc_attributes_cfg_t *cfg = vcfg;
    if (cfg->actions.n == 0) {
        om_err_at(err, "actions", "missing required field \"actions\"");
        return OM_ECONFIG;
    }
    int rc = proc_attraction_validate(&cfg->actions, "actions", err);
    rc = rc != 0 ? rc : validate_props(&cfg->include, cfg->include_present, "include", err);
    return rc != 0 ? rc : validate_props(&cfg->exclude, cfg->exclude_present, "exclude", err);
}

static void attributes_destroy(void *self)
{
    proc_attributes_t *p = self;
    if (p == NULL) {
        return;
    }
    proc_attraction_free(p->actions);
    proc_attributes_props_free(p->include);
    proc_attributes_props_free(p->exclude);
    om_free(p);
}

static int attributes_create(const om_create_args_t *a, void **self, om_err_t *err)
{
    const proc_attributes_cfg_t *cfg = a->cfg;
    proc_attributes_t *p = om_calloc(1, sizeof *p);
    if (p == NULL) {
        om_err_set(err, OM_ENOMEM, "out of memory");
        return OM_ENOMEM;
    }
    p->cfg = cfg;
    p->log_name = a->log_name;
    memcpy(p->next, a->next, sizeof p->next);
    unsigned sigs = a->signals != 0 ? a->signals : OM_SIG_ALL;
    int rc = proc_attraction_new(&cfg->actions, "actions", &p->actions, err);
    rc = rc != 0 ? rc
                 : proc_attributes_props_new(&cfg->include, cfg->include_present, "include", sigs,
                                             &p->include, err);
    rc = rc != 0 ? rc
                 : proc_attributes_props_new(&cfg->exclude, cfg->exclude_present, "exclude", sigs,
                                             &p->exclude, err);
    if (rc == 0) {
        p->wire = p->include == NULL && p->exclude == NULL && proc_attraction_wire_ok(p->actions);
    }
    if (rc != 0) {
        if (err->at[0] != '\0') {
            /* create has no key to point at: put the path in the message. */
            om_strbuf_t msg;
            om_strbuf_init(&msg, 0);
            om_strbuf_printf(&msg, "%s: %s", err->at, err->msg);
            snprintf(err->msg, sizeof err->msg, "%s", msg.data != NULL ? msg.data : "");
            om_strbuf_free(&msg);
        }
        attributes_destroy(p);
        return rc;
    }
    *self = p;
    return 0;
}

static int attributes_start(void *self, om_err_t *err)
{
    (void)self;
    (void)err;
    return 0;
}

static void attributes_shutdown(void *self, om_done_fn done, void *arg)
{
    proc_attributes_t *p = self;
    if (p->shut) {
        return;
    }
    p->shut = true;
    done(arg);
}

/* Whether include/exclude keep the actions off this item. Data points are decided by their
 * metric, once per metric. */
static bool skip_item(proc_attributes_t *p, const om_item_t *it)
{
    if (p->include == NULL && p->exclude == NULL) {
        return false;
    }
    if (it->level != OM_LEVEL_DATAPOINT) {
        return proc_attributes_skip(p->include, p->exclude, it);
    }
    if (it->metric != p->last_metric) {
        p->last_metric = it->metric;
        p->last_skip = proc_attributes_skip(p->include, p->exclude, it);
    }
    return p->last_skip;
}

/* The read-only walk: stops (with a code the caller recognises by needs_edit) at the first
 * item the actions would change. */
static int check_item(om_item_t *it, void *arg)
{
    proc_attributes_t *p = arg;
    if (skip_item(p, it) || !proc_attraction_would_change(p->actions, &it->attrs)) {
        return OM_KEEP;
    }
    p->needs_edit = true;
    return OM_EAGAIN;
}

static int apply_item(om_item_t *it, void *arg)
{
    proc_attributes_t *p = arg;
    if (skip_item(p, it)) {
        return OM_KEEP;
    }
    int rc = proc_attraction_apply(p->actions, &it->attrs);
    return rc < 0 ? rc : OM_KEEP;
}

static void warn_refused(proc_attributes_t *p, int rc, const om_batch_t *b, const om_err_t *err)
{
    uint64_t now = uv_hrtime() / 1000000; /* any thread: not uv_now */
    if (p->last_warn_ms != 0 && now - p->last_warn_ms < 1000) {
        return;
    }
    p->last_warn_ms = now != 0 ? now : 1;
    OM_CLOG(p->log_name, OM_LOG_WARN, "refused a batch of %zu %s: %s", b->items,
            om_signal_item_name(b->signal), err->msg[0] != '\0' ? err->msg : om_strerror(rc));
}

/* The wire path: actions that need no value parsed, on every item (no include/exclude), of a
 * batch that is still its wire bytes. 1: done (b edited or left as it was); 0: take the
 * decoding path; < 0: an error. */
static int consume_on_wire(proc_attributes_t *p, om_batch_t *b, om_level_t level, om_err_t *err)
{
    if (!p->wire || !om_batch_wire_editable(b)) {
        return 0;
    }
    int rc = proc_attraction_wire_apply(p->actions, b, level, err);
    if (rc == 0) {
        return 1;
    }
    /* What the wire path does not follow, the decoding path does (and reports). */
    *err = (om_err_t){0};
    return rc == OM_ENOMEM ? rc : 0;
}

static int consume(proc_attributes_t *p, om_batch_t *b, om_level_t level)
{
    om_err_t err = {0};
    int wired = consume_on_wire(p, b, level, &err);
    if (wired != 0) {
        return wired < 0 ? (warn_refused(p, wired, b, &err), om_batch_release(b), wired)
                         : om_consumer_consume(&p->next[om_signal_index(b->signal)], b);
    }
    p->needs_edit = false;
    p->last_metric = NULL;
    int rc = om_batch_walk(&b, level, check_item, p, &err);
    if (p->needs_edit) {
        p->last_metric = NULL;
        rc = om_batch_edit(&b, &err);
        rc = rc < 0 ? rc : om_batch_walk(&b, level, apply_item, p, &err);
    }
    if (rc < 0) {
        warn_refused(p, rc, b, &err);
        om_batch_release(b);
        return rc;
    }
    return om_consumer_consume(&p->next[om_signal_index(b->signal)], b);
}

static int consume_traces(void *self, om_batch_t *b)
{
    return consume(self, b, OM_LEVEL_SPAN);
}

static int consume_metrics(void *self, om_batch_t *b)
{
    return consume(self, b, OM_LEVEL_DATAPOINT);
}

static int consume_logs(void *self, om_batch_t *b)
{
    return consume(self, b, OM_LEVEL_LOG);
}

const om_factory_t proc_attributes_factory = {
    .abi = OM_FACTORY_ABI,
    .kind = OM_PROCESSOR,
    .type = "attributes",
    .help = "inserts, updates, deletes, hashes, extracts and converts attributes of spans, data "
            "points and log records",
    .signals = OM_SIG_ALL,
    .caps = OM_CAP_MUTATES_DATA | OM_CAP_OFF_LOOP,
    .config_size = sizeof(proc_attributes_cfg_t),
    .fields = attributes_fields,
    .config_validate = attributes_validate,
    .create = attributes_create,
    .start = attributes_start,
    .shutdown = attributes_shutdown,
    .destroy = attributes_destroy,
    .consume_traces = consume_traces,
    .consume_metrics = consume_metrics,
    .consume_logs = consume_logs,
};
