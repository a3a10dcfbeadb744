/* lg_gen.c: the pool of pre-encoded requests.
 *
 * Each request is built as protobuf-c structs in a scratch arena, packed, and (for
 * HTTP/JSON) turned into OTLP JSON by the core's encoder after a round trip through the
 * core's decoder, so the JSON is exactly what otelmon itself would write. The shape follows
 * what SDKs send: one resource (service.name, host.name and a few more), one scope, N items
 * with --attrs attributes each. Spans come in traces of up to 10 spans chained parent to
 * child, each with a status and one event. Everything random comes from one seeded
 * generator, so a seed gives the same pool. */
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <zlib.h>

#include "lg.h"

#define SPANS_PER_TRACE 10
#define POINTS_PER_METRIC 4
#define HIST_BOUNDS 10

typedef struct gen {
    const lg_opts_t *o;
    om_arena_t *a; /* scratch: everything built for one request */
    uint64_t *rng;
    uint64_t now_ns;
    bool oom;
} gen_t;

uint64_t lg_rand(uint64_t *state)
{
    uint64_t z = (*state += UINT64_C(0x9e3779b97f4a7c15));
    z = (z ^ (z >> 30)) * UINT64_C(0xbf58476d1ce4e5b9);
    z = (z ^ (z >> 27)) * UINT64_C(0x94d049bb133111eb);
    return z ^ (z >> 31);
}

static void *gcalloc(gen_t *g, size_t count, size_t size)
{
    void *p = om_arena_calloc(g->a, count, size);
    if (p == NULL) {
        g->oom = true;
    }
    return p;
}

static char *gstr(gen_t *g, const char *s)
{
    char *p = om_arena_strndup(g->a, s, strlen(s));
    if (p == NULL) {
        g->oom = true;
    }
    return p;
}

static char *rand_str(gen_t *g, size_t n)
{
    static const char alphabet[] = "abcdefghijklmnopqrstuvwxyz0123456789";
    char *s = gcalloc(g, n + 1, 1);
    if (s == NULL) {
        return NULL;
    }
    for (size_t i = 0; i < n; i++) {
        s[i] = alphabet[lg_rand(g->rng) % (sizeof alphabet - 1)];
    }
    return s;
}

static ProtobufCBinaryData rand_bytes(gen_t *g, size_t n)
{
    ProtobufCBinaryData d = {0, NULL};
    uint8_t *b = gcalloc(g, n, 1);
    if (b == NULL) {
        return d;
    }
    for (size_t i = 0; i < n; i += 8) {
        uint64_t r = lg_rand(g->rng);
        memcpy(b + i, &r, n - i < 8 ? n - i : 8);
    }
    d.len = n;
    d.data = b;
    return d;
}

static om_keyvalue_t *kv_new(gen_t *g, const char *key)
{
    om_keyvalue_t *kv = gcalloc(g, 1, sizeof *kv);
    om_anyvalue_t *v = gcalloc(g, 1, sizeof *v);
    if (kv == NULL || v == NULL) {
        return NULL;
    }
    opentelemetry__proto__common__v1__key_value__init(kv);
    opentelemetry__proto__common__v1__any_value__init(v);
    kv->key = gstr(g, key);
    kv->value = v;
    return kv;
}

static om_keyvalue_t *kv_str(gen_t *g, const char *key, char *val)
{
    om_keyvalue_t *kv = kv_new(g, key);
    if (kv != NULL) {
        kv->value->value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_STRING_VALUE;
        kv->value->string_value = val != NULL ? val : gstr(g, "");
    }
    return kv;
}

static om_keyvalue_t *kv_int(gen_t *g, const char *key, int64_t val)
{
    om_keyvalue_t *kv = kv_new(g, key);
    if (kv != NULL) {
        kv->value->value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_INT_VALUE;
        kv->value->int_value = val;
    }
    return kv;
}

/* n attributes alternating string (attr_size bytes) and int, with semantic-convention keys
 * while they last. */
static om_keyvalue_t **make_attrs(gen_t *g, unsigned n)
{
    static const char *const keys[] = {
        "http.route",
        "http.response.status_code",
        "url.path",
        "server.port",
        "server.address",
        "http.request.body.size",
        "user_agent.original",
        "network.peer.port",
    };
    om_keyvalue_t **kvs = gcalloc(g, n > 0 ? n : 1, sizeof *kvs);
    for (unsigned i = 0; kvs != NULL && i < n; i++) {
        char key[32];
        const char *k = keys[i % 8];
        if (i >= 8) {
            snprintf(key, sizeof key, "attr.%u", i);
            k = key;
        }
        if (i % 2 == 0) {
            kvs[i] = kv_str(g, k, rand_str(g, g->o->attr_size));
        } else {
            kvs[i] = kv_int(g, k, (int64_t)(lg_rand(g->rng) % 65536));
        }
    }
    return kvs;
}

static om_resource_t *make_resource(gen_t *g)
{
    char host[256] = "localhost";
    if (gethostname(host, sizeof host - 1) != 0) {
        snprintf(host, sizeof host, "localhost");
    }
    om_resource_t *r = gcalloc(g, 1, sizeof *r);
    om_keyvalue_t **kvs = gcalloc(g, 7, sizeof *kvs);
    if (r == NULL || kvs == NULL) {
        return NULL;
    }
    opentelemetry__proto__resource__v1__resource__init(r);
    kvs[0] = kv_str(g, "service.name", gstr(g, "otelmon-loadgen"));
    kvs[1] = kv_str(g, "host.name", gstr(g, host));
    kvs[2] = kv_str(g, "service.version", gstr(g, "1.4.2"));
    kvs[3] = kv_str(g, "service.instance.id", rand_str(g, 36));
    kvs[4] = kv_str(g, "deployment.environment.name", gstr(g, "bench"));
    kvs[5] = kv_str(g, "telemetry.sdk.language", gstr(g, "cpp"));
    kvs[6] = kv_int(g, "process.pid", (int64_t)getpid());
    r->n_attributes = 7;
    r->attributes = kvs;
    return r;
}

static om_scope_t *make_scope(gen_t *g)
{
    om_scope_t *s = gcalloc(g, 1, sizeof *s);
    if (s != NULL) {
        opentelemetry__proto__common__v1__instrumentation_scope__init(s);
        s->name = gstr(g, "otelmon-loadgen");
        s->version = gstr(g, OM_VERSION);
    }
    return s;
}

static om_span_event_t *make_event(gen_t *g, uint64_t t)
{
    om_span_event_t *e = gcalloc(g, 1, sizeof *e);
    om_keyvalue_t **kvs = gcalloc(g, 2, sizeof *kvs);
    if (e == NULL || kvs == NULL) {
        return NULL;
    }
    opentelemetry__proto__trace__v1__span__event__init(e);
    e->time_unix_nano = t;
    e->name = gstr(g, "cache.lookup");
    kvs[0] = kv_str(g, "cache.key", rand_str(g, g->o->attr_size));
    kvs[1] = kv_int(g, "cache.hit", (int64_t)(lg_rand(g->rng) & 1));
    e->n_attributes = 2;
    e->attributes = kvs;
    return e;
}

/* Makes s an ETL run as the original traced() helper reports one (--etl-every): its
 * attributes plus the helper's etl.* ones, values strings as the helper writes them; one run
 * in ten fails. */
static void make_etl(gen_t *g, om_span_t *s, uint64_t r)
{
    static const char *const kv[][2] = {
        {"etl.group_name", "sales"},       {"etl.platform", "script"},
        {"etl.script_name", "load.py"},    {"etl.source_system_type", "oracle"},
        {"etl.source_system_name", "ERP"}, {"etl.source_object_name", "ORDERS"},
        {"etl.source_count", "1200"},      {"etl.target_system_type", "mariadb"},
        {"etl.target_system_name", "DW"},  {"etl.target_object_name", "fact_orders"},
        {"etl.target_count", "1198"},      {"etl.start_time", "2024-05-01 10:00:00"},
    };
    size_t extra = sizeof kv / sizeof kv[0] + 2;
    om_keyvalue_t **kvs = gcalloc(g, s->n_attributes + extra, sizeof *kvs);
    if (kvs == NULL) {
        return;
    }
    for (size_t i = 0; i < s->n_attributes; i++) {
        kvs[i] = s->attributes[i];
    }
    size_t n = s->n_attributes;
    char name[32];
    snprintf(name, sizeof name, "load_%u", (unsigned)(r % 50));
    kvs[n++] = kv_str(g, "etl.process_name", gstr(g, name));
    for (size_t i = 0; i < sizeof kv / sizeof kv[0]; i++) {
        kvs[n++] = kv_str(g, kv[i][0], gstr(g, kv[i][1]));
    }
    if (r % 10 == 0) {
        kvs[n++] = kv_str(g, "etl.error", gstr(g, "ORA-00942: table or view does not exist"));
    }
    s->attributes = kvs;
    s->n_attributes = n;
}

/* One span; parent is the previous span of its trace (NULL for a root). */
static om_span_t *make_span(gen_t *g, const om_span_t *parent)
{
    static const char *const names[] = {
        "GET /api/v1/items/{id}",
        "POST /api/v1/orders",
        "SELECT orders",
        "redis GET",
        "HTTP GET",
        "process_batch",
        "PUT /api/v1/users/{id}",
        "publish",
    };
    om_span_t *s = gcalloc(g, 1, sizeof *s);
    om_span_status_t *st = gcalloc(g, 1, sizeof *st);
    om_span_event_t **ev = gcalloc(g, 1, sizeof *ev);
    if (s == NULL || st == NULL || ev == NULL) {
        return NULL;
    }
    opentelemetry__proto__trace__v1__span__init(s);
    opentelemetry__proto__trace__v1__status__init(st);
    uint64_t r = lg_rand(g->rng);
    s->trace_id = parent != NULL ? parent->trace_id : rand_bytes(g, 16);
    s->span_id = rand_bytes(g, 8);
    if (parent != NULL) {
        s->parent_span_id = parent->span_id;
    }
    s->name = gstr(g, names[r % 8]);
    s->kind = parent == NULL ? OPENTELEMETRY__PROTO__TRACE__V1__SPAN__SPAN_KIND__SPAN_KIND_SERVER
                             : OPENTELEMETRY__PROTO__TRACE__V1__SPAN__SPAN_KIND__SPAN_KIND_CLIENT;
    s->start_time_unix_nano = g->now_ns - (r >> 40) % (10 * OM_NS_PER_S);
    s->end_time_unix_nano = s->start_time_unix_nano + 100000 + (r >> 8) % (100 * OM_NS_PER_MS);
    s->n_attributes = g->o->attrs;
    s->attributes = make_attrs(g, g->o->attrs);
    ev[0] = make_event(g, s->start_time_unix_nano + 50000);
    s->n_events = 1;
    s->events = ev;
    /* One span in ten fails, as a busy service's would. */
    if (r % 10 == 0) {
        st->code = OPENTELEMETRY__PROTO__TRACE__V1__STATUS__STATUS_CODE__STATUS_CODE_ERROR;
        st->message = gstr(g, "upstream timed out");
    } else {
        st->code = OPENTELEMETRY__PROTO__TRACE__V1__STATUS__STATUS_CODE__STATUS_CODE_OK;
    }
    s->status = st;
    if (g->o->etl_every > 0 && lg_rand(g->rng) % g->o->etl_every == 0) {
        make_etl(g, s, r >> 16);
    }
    return s;
}

static ProtobufCMessage *build_traces(gen_t *g)
{
    om_traces_req_t *req = gcalloc(g, 1, sizeof *req);
    om_resource_spans_t *rs = gcalloc(g, 1, sizeof *rs);
    om_scope_spans_t *ss = gcalloc(g, 1, sizeof *ss);
    om_resource_spans_t **rsv = gcalloc(g, 1, sizeof *rsv);
    om_scope_spans_t **ssv = gcalloc(g, 1, sizeof *ssv);
    om_span_t **spans = gcalloc(g, g->o->items > 0 ? g->o->items : 1, sizeof *spans);
    if (req == NULL || rs == NULL || ss == NULL || rsv == NULL || ssv == NULL || spans == NULL) {
        return NULL;
    }
    opentelemetry__proto__collector__trace__v1__export_trace_service_request__init(req);
    opentelemetry__proto__trace__v1__resource_spans__init(rs);
    opentelemetry__proto__trace__v1__scope_spans__init(ss);
    for (unsigned i = 0; i < g->o->items && !g->oom; i++) {
        spans[i] = make_span(g, i % SPANS_PER_TRACE == 0 ? NULL : spans[i - 1]);
    }
    ss->scope = make_scope(g);
    ss->n_spans = g->o->items;
    ss->spans = spans;
    rs->resource = make_resource(g);
    rs->n_scope_spans = 1;
    rs->scope_spans = ssv;
    ssv[0] = ss;
    req->n_resource_spans = 1;
    req->resource_spans = rsv;
    rsv[0] = rs;
    return &req->base;
}

static om_number_dp_t *make_number_dp(gen_t *g, bool is_int)
{
    om_number_dp_t *dp = gcalloc(g, 1, sizeof *dp);
    if (dp == NULL) {
        return NULL;
    }
    opentelemetry__proto__metrics__v1__number_data_point__init(dp);
    dp->n_attributes = g->o->attrs;
    dp->attributes = make_attrs(g, g->o->attrs);
    dp->start_time_unix_nano = g->now_ns - 60 * OM_NS_PER_S;
    dp->time_unix_nano = g->now_ns;
    uint64_t r = lg_rand(g->rng);
    if (is_int) {
        dp->value_case = OPENTELEMETRY__PROTO__METRICS__V1__NUMBER_DATA_POINT__VALUE_AS_INT;
        dp->as_int = (int64_t)(r % 1000000);
    } else {
        dp->value_case = OPENTELEMETRY__PROTO__METRICS__V1__NUMBER_DATA_POINT__VALUE_AS_DOUBLE;
        dp->as_double = (double)(r % 100000) / 100.0;
    }
    return dp;
}

static om_histogram_dp_t *make_hist_dp(gen_t *g)
{
    om_histogram_dp_t *dp = gcalloc(g, 1, sizeof *dp);
    uint64_t *counts = gcalloc(g, HIST_BOUNDS + 1, sizeof *counts);
    double *bounds = gcalloc(g, HIST_BOUNDS, sizeof *bounds);
    if (dp == NULL || counts == NULL || bounds == NULL) {
        return NULL;
    }
    opentelemetry__proto__metrics__v1__histogram_data_point__init(dp);
    dp->n_attributes = g->o->attrs;
    dp->attributes = make_attrs(g, g->o->attrs);
    dp->start_time_unix_nano = g->now_ns - 60 * OM_NS_PER_S;
    dp->time_unix_nano = g->now_ns;
    uint64_t total = 0;
    for (size_t i = 0; i <= HIST_BOUNDS; i++) {
        counts[i] = lg_rand(g->rng) % 100;
        total += counts[i];
        if (i < HIST_BOUNDS) {
            bounds[i] = (double)(5u << i);
        }
    }
    dp->count = total;
    dp->_sum_case = OPENTELEMETRY__PROTO__METRICS__V1__HISTOGRAM_DATA_POINT___SUM_SUM;
    dp->sum = (double)total * 42.5;
    dp->n_bucket_counts = HIST_BOUNDS + 1;
    dp->bucket_counts = counts;
    dp->n_explicit_bounds = HIST_BOUNDS;
    dp->explicit_bounds = bounds;
    return dp;
}

/* Metric k of a request with npts points: gauges, monotonic sums and histograms in turn. */
static om_metric_t *make_metric(gen_t *g, unsigned k, size_t npts)
{
    static const char *const names[] = {"system.cpu.utilization", "http.server.requests",
                                        "http.server.request.duration"};
    om_metric_t *m = gcalloc(g, 1, sizeof *m);
    void **dps = gcalloc(g, npts, sizeof *dps);
    if (m == NULL || dps == NULL) {
        return NULL;
    }
    opentelemetry__proto__metrics__v1__metric__init(m);
    char name[64];
    snprintf(name, sizeof name, "%s.%u", names[k % 3], k);
    m->name = gstr(g, name);
    for (size_t i = 0; i < npts; i++) {
        dps[i] = k % 3 == 2 ? (void *)make_hist_dp(g) : (void *)make_number_dp(g, k % 3 == 1);
    }
    if (k % 3 == 0) {
        om_gauge_t *ga = gcalloc(g, 1, sizeof *ga);
        if (ga == NULL) {
            return NULL;
        }
        opentelemetry__proto__metrics__v1__gauge__init(ga);
        ga->n_data_points = npts;
        ga->data_points = (om_number_dp_t **)dps;
        m->unit = gstr(g, "1");
        m->data_case = OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_GAUGE;
        m->gauge = ga;
    } else if (k % 3 == 1) {
        om_sum_t *su = gcalloc(g, 1, sizeof *su);
        if (su == NULL) {
            return NULL;
        }
        opentelemetry__proto__metrics__v1__sum__init(su);
        su->n_data_points = npts;
        su->data_points = (om_number_dp_t **)dps;
        su->aggregation_temporality =
            OPENTELEMETRY__PROTO__METRICS__V1__AGGREGATION_TEMPORALITY__AGGREGATION_TEMPORALITY_CUMULATIVE;
        su->is_monotonic = 1;
        m->unit = gstr(g, "{request}");
        m->data_case = OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_SUM;
        m->sum = su;
    } else {
        om_histogram_t *h = gcalloc(g, 1, sizeof *h);
        if (h == NULL) {
            return NULL;
        }
        opentelemetry__proto__metrics__v1__histogram__init(h);
        h->n_data_points = npts;
        h->data_points = (om_histogram_dp_t **)dps;
        h->aggregation_temporality =
            OPENTELEMETRY__PROTO__METRICS__V1__AGGREGATION_TEMPORALITY__AGGREGATION_TEMPORALITY_CUMULATIVE;
        m->unit = gstr(g, "ms");
        m->data_case = OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_HISTOGRAM;
        m->histogram = h;
    }
    return m;
}

static ProtobufCMessage *build_metrics(gen_t *g)
{
    size_t nm = (g->o->items + POINTS_PER_METRIC - 1) / POINTS_PER_METRIC;
    om_metrics_req_t *req = gcalloc(g, 1, sizeof *req);
    om_resource_metrics_t *rm = gcalloc(g, 1, sizeof *rm);
    om_scope_metrics_t *sm = gcalloc(g, 1, sizeof *sm);
    om_resource_metrics_t **rmv = gcalloc(g, 1, sizeof *rmv);
    om_scope_metrics_t **smv = gcalloc(g, 1, sizeof *smv);
    om_metric_t **ms = gcalloc(g, nm > 0 ? nm : 1, sizeof *ms);
    if (req == NULL || rm == NULL || sm == NULL || rmv == NULL || smv == NULL || ms == NULL) {
        return NULL;
    }
    opentelemetry__proto__collector__metrics__v1__export_metrics_service_request__init(req);
    opentelemetry__proto__metrics__v1__resource_metrics__init(rm);
    opentelemetry__proto__metrics__v1__scope_metrics__init(sm);
    for (size_t k = 0; k < nm && !g->oom; k++) {
        size_t left = g->o->items - k * POINTS_PER_METRIC;
        ms[k] = make_metric(g, (unsigned)k, left < POINTS_PER_METRIC ? left : POINTS_PER_METRIC);
    }
    sm->scope = make_scope(g);
    sm->n_metrics = nm;
    sm->metrics = ms;
    rm->resource = make_resource(g);
    rm->n_scope_metrics = 1;
    rm->scope_metrics = smv;
    smv[0] = sm;
    req->n_resource_metrics = 1;
    req->resource_metrics = rmv;
    rmv[0] = rm;
    return &req->base;
}

static om_log_record_t *make_log(gen_t *g)
{
    om_log_record_t *l = gcalloc(g, 1, sizeof *l);
    om_anyvalue_t *body = gcalloc(g, 1, sizeof *body);
    if (l == NULL || body == NULL) {
        return NULL;
    }
    opentelemetry__proto__logs__v1__log_record__init(l);
    opentelemetry__proto__common__v1__any_value__init(body);
    uint64_t r = lg_rand(g->rng);
    l->time_unix_nano = g->now_ns - (r >> 40) % (10 * OM_NS_PER_S);
    l->observed_time_unix_nano = l->time_unix_nano + 1000;
    bool err = r % 10 == 0;
    l->severity_number =
        err ? OPENTELEMETRY__PROTO__LOGS__V1__SEVERITY_NUMBER__SEVERITY_NUMBER_ERROR
            : OPENTELEMETRY__PROTO__LOGS__V1__SEVERITY_NUMBER__SEVERITY_NUMBER_INFO;
    l->severity_text = gstr(g, err ? "ERROR" : "INFO");
    body->value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_STRING_VALUE;
    body->string_value = rand_str(g, 4 * (size_t)g->o->attr_size + 32);
    l->body = body;
    l->n_attributes = g->o->attrs;
    l->attributes = make_attrs(g, g->o->attrs);
    l->trace_id = rand_bytes(g, 16);
    l->span_id = rand_bytes(g, 8);
    l->flags = 1;
    return l;
}

static ProtobufCMessage *build_logs(gen_t *g)
{
    om_logs_req_t *req = gcalloc(g, 1, sizeof *req);
    om_resource_logs_t *rl = gcalloc(g, 1, sizeof *rl);
    om_scope_logs_t *sl = gcalloc(g, 1, sizeof *sl);
    om_resource_logs_t **rlv = gcalloc(g, 1, sizeof *rlv);
    om_scope_logs_t **slv = gcalloc(g, 1, sizeof *slv);
    om_log_record_t **recs = gcalloc(g, g->o->items > 0 ? g->o->items : 1, sizeof *recs);
    if (req == NULL || rl == NULL || sl == NULL || rlv == NULL || slv == NULL || recs == NULL) {
        return NULL;
    }
    opentelemetry__proto__collector__logs__v1__export_logs_service_request__init(req);
    opentelemetry__proto__logs__v1__resource_logs__init(rl);
    opentelemetry__proto__logs__v1__scope_logs__init(sl);
    for (unsigned i = 0; i < g->o->items && !g->oom; i++) {
        recs[i] = make_log(g);
    }
    sl->scope = make_scope(g);
    sl->n_log_records = g->o->items;
    sl->log_records = recs;
    rl->resource = make_resource(g);
    rl->n_scope_logs = 1;
    rl->scope_logs = slv;
    slv[0] = sl;
    req->n_resource_logs = 1;
    req->resource_logs = rlv;
    rlv[0] = rl;
    return &req->base;
}

int lg_gen_proto(const lg_opts_t *o, uint64_t *rng, uint8_t **out, size_t *len, om_err_t *err)
{
    gen_t g = {.o = o, .a = om_arena_new(0), .rng = rng, .now_ns = 0};
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    g.now_ns = (uint64_t)ts.tv_sec * OM_NS_PER_S + (uint64_t)ts.tv_nsec;
    int rc = OM_ENOMEM;
    if (g.a == NULL) {
        goto out;
    }
    ProtobufCMessage *msg = o->signal == OM_SIG_TRACES    ? build_traces(&g)
                            : o->signal == OM_SIG_METRICS ? build_metrics(&g)
                                                          : build_logs(&g);
    if (msg == NULL || g.oom) {
        goto out;
    }
    size_t n = protobuf_c_message_get_packed_size(msg);
    uint8_t *buf = om_malloc(n > 0 ? n : 1);
    if (buf == NULL) {
        goto out;
    }
    *len = protobuf_c_message_pack(msg, buf);
    *out = buf;
    rc = 0;
out:
    if (rc != 0) {
        om_err_set(err, rc, "building a request: out of memory");
    }
    om_arena_unref(g.a);
    return rc;
}

int lg_gzip(const uint8_t *data, size_t len, uint8_t **out, size_t *out_len)
{
    z_stream z;
    memset(&z, 0, sizeof z);
    /* 31: a gzip header and trailer (15 bits of window + 16). */
    if (deflateInit2(&z, Z_DEFAULT_COMPRESSION, Z_DEFLATED, 31, 8, Z_DEFAULT_STRATEGY) != Z_OK) {
        return OM_ENOMEM;
    }
    int rc = OM_ENOMEM;
    size_t cap = deflateBound(&z, (uLong)len) + 32;
    uint8_t *buf = om_malloc(cap);
    if (buf == NULL) {
        goto out;
    }
    z.next_in = (Bytef *)(uintptr_t)data;
    z.avail_in = (uInt)len;
    z.next_out = buf;
    z.avail_out = (uInt)cap;
    if (deflate(&z, Z_FINISH) != Z_STREAM_END) {
        om_free(buf);
        rc = OM_EIO;
        goto out;
    }
    *out = buf;
    *out_len = cap - z.avail_out;
    rc = 0;
out:
    deflateEnd(&z);
    return rc;
}

/* The core's decoder (libdeflate, bounded by max), not zlib's inflate: in bench/run's 1g2 the
 * sink shares the collector's two cores, and zlib took 0.9-1.0 us of them per span against
 * libdeflate's 0.39 (bench/README.md, "The sink's inflate"). */
int lg_gunzip(const uint8_t *data, size_t len, size_t max, uint8_t **out, size_t *out_len)
{
    om_comp_t alg = OM_COMP_ZLIB;
    if (len >= 2 && data[0] == 0x1f && data[1] == 0x8b) {
        alg = OM_COMP_GZIP;
    } else if (len >= 4 && memcmp(data, "\x28\xb5\x2f\xfd", 4) == 0) {
        alg = OM_COMP_ZSTD;
    }
    return om_decompress(alg, data, len, max, out, out_len, NULL);
}

/* Replaces r->body (protobuf) by its OTLP JSON form, through the core's codec. */
static int to_json(const lg_opts_t *o, lg_req_t *r, om_err_t *err)
{
    om_batch_t *b = NULL;
    int rc = om_batch_decode_proto(o->signal, r->body, r->body_len, 0, &b, err);
    if (rc == 0) {
        rc = om_batch_decode(b, err);
    }
    if (rc != 0) {
        om_batch_release(b);
        return rc;
    }
    om_strbuf_t sb;
    om_strbuf_init(&sb, 0);
    rc = om_otlp_json_encode(b, &sb);
    om_batch_release(b);
    if (rc == 0 && sb.failed) {
        rc = OM_ENOMEM;
    }
    if (rc != 0) {
        om_strbuf_free(&sb);
        om_err_set(err, rc, "encoding a request as OTLP JSON failed");
        return rc;
    }
    om_free(r->body);
    r->body = (uint8_t *)om_strbuf_steal(&sb, &r->body_len);
    return 0;
}

static int make_wire(const lg_opts_t *o, lg_req_t *r)
{
    om_strbuf_t sb;
    om_strbuf_init(&sb, 0);
    om_strbuf_printf(&sb,
                     "POST %s HTTP/1.1\r\nHost: %s:%d\r\nUser-Agent: otelmon-loadgen/%s\r\n"
                     "Content-Type: %s\r\nContent-Length: %zu\r\n%s\r\n",
                     lg_signal_paths[om_signal_index(o->signal)], o->host, o->port, OM_VERSION,
                     o->protocol == LG_HTTP_JSON ? "application/json" : "application/x-protobuf",
                     r->body_len, o->gzip ? "Content-Encoding: gzip\r\n" : "");
    om_strbuf_append(&sb, r->body, r->body_len);
    if (sb.failed) {
        om_strbuf_free(&sb);
        return OM_ENOMEM;
    }
    r->wire = (uint8_t *)om_strbuf_steal(&sb, &r->wire_len);
    return 0;
}

static int build_one(const lg_opts_t *o, uint64_t *rng, lg_req_t *r, size_t *raw, om_err_t *err)
{
    int rc = lg_gen_proto(o, rng, &r->body, &r->body_len, err);
    if (rc != 0) {
        return rc;
    }
    *raw += r->body_len;
    r->items = o->items;
    if (o->protocol == LG_HTTP_JSON) {
        rc = to_json(o, r, err);
        if (rc != 0) {
            return rc;
        }
    }
    if (o->gzip) {
        uint8_t *z = NULL;
        size_t zl = 0;
        rc = lg_gzip(r->body, r->body_len, &z, &zl);
        if (rc != 0) {
            om_err_set(err, rc, "gzip failed");
            return rc;
        }
        om_free(r->body);
        r->body = z;
        r->body_len = zl;
    }
    if (o->protocol != LG_GRPC) {
        rc = make_wire(o, r);
        if (rc != 0) {
            om_err_set(err, rc, "building an HTTP request: out of memory");
        }
    }
    return rc;
}

uint64_t lg_rw_samples_per_request(const lg_opts_t *o)
{
    if (o->signal != OM_SIG_METRICS) {
        return 0;
    }
    uint64_t n = 0;
    size_t nm = (o->items + POINTS_PER_METRIC - 1) / POINTS_PER_METRIC;
    for (size_t k = 0; k < nm; k++) {
        size_t left = o->items - k * POINTS_PER_METRIC;
        size_t npts = left < POINTS_PER_METRIC ? left : POINTS_PER_METRIC;
        /* make_metric: gauges, sums and histograms (with a sum) in turn. */
        n += npts * (k % 3 == 2 ? HIST_BOUNDS + 3 : 1);
    }
    return n + 1; /* target_info */
}

int lg_pool_build(const lg_opts_t *o, lg_pool_t *pool, om_err_t *err)
{
    memset(pool, 0, sizeof *pool);
    pool->reqs = om_calloc(o->pool, sizeof *pool->reqs);
    if (pool->reqs == NULL) {
        om_err_set(err, OM_ENOMEM, "allocating the request pool");
        return OM_ENOMEM;
    }
    pool->n = o->pool;
    uint64_t rng = o->seed;
    for (size_t i = 0; i < pool->n; i++) {
        int rc = build_one(o, &rng, &pool->reqs[i], &pool->raw_bytes, err);
        if (rc != 0) {
            lg_pool_free(pool);
            return rc;
        }
    }
    return 0;
}

void lg_pool_free(lg_pool_t *pool)
{
    for (size_t i = 0; pool->reqs != NULL && i < pool->n; i++) {
        om_free(pool->reqs[i].body);
        om_free(pool->reqs[i].wire);
    }
    om_free(pool->reqs);
    memset(pool, 0, sizeof *pool);
}
