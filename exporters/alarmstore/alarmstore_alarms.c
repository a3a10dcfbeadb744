/* alarmstore_alarms.c: the alarms' database side, on the exporter's database thread only:
 * which notices are due (the dedup plan, as_plan_pair, pure), what a digest holds, and how a
 * send went (alarms' state, attempts, next_attempt_at, last_error; alert_history). The
 * states are documented in alarmstore.h ("Alarms").
 *
 * The SQL is the same for both backends: parameters are text, times are the UTC text both
 * write ("YYYY-MM-DD HH:MM:SS.ffffff", which orders as time in SQLite and converts in
 * MariaDB), and the one difference, INSERT OR IGNORE / INSERT IGNORE, is the backend's. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "alarmstore.h"

/* Per call: the pairs with open alarms read (the others wait for the next call, a second
 * later), the open alarms read per pair (a counted notice counts at most these; the rest go
 * in the next one), the notices planned (the rest at once in the next call: a cycle's sends
 * stay a bounded burst). */
#define PAIRS_LIMIT 1000
#define PAIR_LIMIT 1000
#define NOTICES_LIMIT 64
/* Alarms in one digest: beyond, the digest says how many more there are. */
#define DIGEST_LIMIT 1000
#define DAY_NS (86400 * OM_NS_PER_S)

void as_alarm_free(as_alarm_t *a)
{
    char **s[] = {&a->group,           &a->process,    &a->host,          &a->platform,
                  &a->script,          &a->error_type, &a->error_message, &a->stack_trace,
                  &a->start_time,      &a->end_time,   &a->trace_id,      &a->created_at,
                  &a->next_attempt_at, &a->state,      &a->last_error};
    for (size_t i = 0; i < sizeof s / sizeof s[0]; i++) {
        om_free(*s[i]);
        *s[i] = NULL;
    }
}

static void notice_free(as_notice_t *nt)
{
    for (size_t i = 0; i < nt->n; i++) {
        as_alarm_free(&nt->v[i]);
    }
    om_free(nt->v);
    memset(nt, 0, sizeof *nt);
}

void as_notices_free(as_notices_t *ns)
{
    for (size_t i = 0; i < ns->n; i++) {
        notice_free(&ns->v[i]);
    }
    om_free(ns->v);
    memset(ns, 0, sizeof *ns);
}

bool as_parse_db_time(const char *s, int64_t *ns)
{
    if (s == NULL) {
        return false;
    }
    struct tm tm = {0};
    int used = 0;
    if (sscanf(s, "%4d-%2d-%2d%*1[ T]%2d:%2d:%2d%n", &tm.tm_year, &tm.tm_mon, &tm.tm_mday,
               &tm.tm_hour, &tm.tm_min, &tm.tm_sec, &used) != 6 ||
        used < 19) {
        return false;
    }
    tm.tm_year -= 1900;
    tm.tm_mon -= 1;
    int64_t frac = 0;
    const char *p = s + used;
    if (*p == '.') {
        int64_t scale = 100000000;
        for (p++; *p >= '0' && *p <= '9'; p++, scale /= 10) {
            frac += scale * (*p - '0');
        }
    }
    *ns = (int64_t)timegm(&tm) * OM_NS_PER_S + frac;
    return true;
}

/* ------------------------------------------------------------------------------------------ */
/* The plan                                                                                   */

static void lower_wake(as_notices_t *out, int64_t t)
{
    if (t > 0 && (out->next_wake_ns == 0 || t < out->next_wake_ns)) {
        out->next_wake_ns = t;
    }
}

/* When v's retry may run (0: now). */
static int64_t retry_at(const as_alarm_t *a)
{
    int64_t t = 0;
    return a->next_attempt_at != NULL && as_parse_db_time(a->next_attempt_at, &t) ? t : 0;
}

/* Moves v[0..n) into a new notice of out. */
static int take(as_alarm_t *v, size_t n, unsigned notifiers, as_notices_t *out)
{
    if (out->n == out->cap) {
        size_t cap = out->cap ? out->cap * 2 : 8;
        as_notice_t *nv = om_realloc(out->v, cap * sizeof *nv);
        if (nv == NULL) {
            return OM_ENOMEM;
        }
        out->v = nv;
        out->cap = cap;
    }
    as_notice_t *nt = &out->v[out->n];
    memset(nt, 0, sizeof *nt);
    nt->v = om_calloc(n, sizeof *nt->v);
    if (nt->v == NULL) {
        return OM_ENOMEM;
    }
    for (size_t i = 0; i < n; i++) {
        nt->v[i] = v[i];
        /* A notifier that took or refused every alarm of the notice is not asked again. */
        nt->need |= notifiers & ~(v[i].done | v[i].done >> AS_NOTIFIER_GAVE_UP_SHIFT);
        memset(&v[i], 0, sizeof v[i]);
    }
    nt->n = n;
    nt->need = nt->need != 0 ? nt->need : notifiers;
    out->n++;
    return 0;
}

/* Sends v[0..n) as one notice when its retry time has come; else wakes then. */
static int take_when_due(const as_plan_in_t *in, as_alarm_t *v, size_t n, as_notices_t *out)
{
    int64_t due = 0;
    for (size_t i = 0; i < n; i++) {
        int64_t t = retry_at(&v[i]);
        due = t > due ? t : due;
    }
    if (due > in->now_ns) {
        lower_wake(out, due);
        return 0;
    }
    return take(v, n, in->notifiers, out);
}

int as_plan_pair(const as_plan_in_t *in, as_alarm_t *v, size_t n, int64_t last_ns,
                 as_notices_t *out)
{
    if (n == 0) {
        return 0;
    }
    if (in->window_ns <= 0) {
        for (size_t i = 0; i < n; i++) {
            int rc = take_when_due(in, &v[i], 1, out);
            if (rc != 0) {
                return rc;
            }
        }
        return 0;
    }
    if (last_ns > 0 && in->now_ns < last_ns + in->window_ns) {
        lower_wake(out, last_ns + in->window_ns);
        return 0;
    }
    bool suppressed = false;
    for (size_t i = 0; i < n && last_ns > 0; i++) {
        int64_t created = 0;
        suppressed = suppressed || (as_parse_db_time(v[i].created_at, &created) &&
                                    created < last_ns + in->window_ns);
    }
    if (suppressed) {
        return take_when_due(in, v, n, out);
    }
    if (n > 1) {
        /* The others wait for the end of the window the first one's notification opens. */
        lower_wake(out, in->now_ns + in->window_ns);
    }
    return take_when_due(in, v, 1, out);
}

/* ------------------------------------------------------------------------------------------ */
/* Reading alarms                                                                             */

/* The columns every alarm query selects, in as_alarm_t's order (see read_alarm). */
#define ALARM_COLS                                                                                 \
    "a.id, a.group_name, a.process_name, e.host_name, a.platform_type, e.script_name,"             \
    " e.error_type, e.error_message, e.stack_trace, e.start_time, a.end_time, e.trace_id,"         \
    " a.created_at, a.next_attempt_at, a.state, a.last_error, a.notify_attempts,"                  \
    " a.notifiers_done"
#define ALARM_N_COLS 18

typedef struct alarm_list {
    as_alarm_t *v;
    size_t n, cap;
} alarm_list_t;

static char *dup_or_null(const char *s)
{
    return s != NULL ? om_strdup(s) : NULL;
}

static int read_alarm(void *arg, const char *const *c, size_t n)
{
    alarm_list_t *l = arg;
    if (n < ALARM_N_COLS) {
        return 0;
    }
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 32;
        as_alarm_t *nv = om_realloc(l->v, cap * sizeof *nv);
        if (nv == NULL) {
            return OM_ENOMEM;
        }
        l->v = nv;
        l->cap = cap;
    }
    as_alarm_t *a = &l->v[l->n++];
    memset(a, 0, sizeof *a);
    a->id = c[0] != NULL ? strtoll(c[0], NULL, 10) : 0;
    char **s[] = {&a->group,           &a->process,    &a->host,          &a->platform,
                  &a->script,          &a->error_type, &a->error_message, &a->stack_trace,
                  &a->start_time,      &a->end_time,   &a->trace_id,      &a->created_at,
                  &a->next_attempt_at, &a->state,      &a->last_error};
    bool oom = false;
    for (size_t i = 0; i < sizeof s / sizeof s[0]; i++) {
        *s[i] = dup_or_null(c[1 + i]);
        oom = oom || (c[1 + i] != NULL && *s[i] == NULL);
    }
    a->attempts = c[16] != NULL ? atoi(c[16]) : 0;
    a->done = c[17] != NULL ? (unsigned)strtoul(c[17], NULL, 10) : 0;
    return oom ? OM_ENOMEM : 0;
}

static void list_free(alarm_list_t *l)
{
    for (size_t i = 0; i < l->n; i++) {
        as_alarm_free(&l->v[i]);
    }
    om_free(l->v);
    memset(l, 0, sizeof *l);
}

static bool same(const char *a, const char *b)
{
    return a == NULL ? b == NULL : b != NULL && strcmp(a, b) == 0;
}

/* A (group, process)'s last notification time, read from alert_history. */
typedef struct last_sent {
    char *group, *process;
    int64_t at_ns;
} last_sent_t;

typedef struct last_list {
    last_sent_t *v;
    size_t n, cap;
} last_list_t;

static int read_last(void *arg, const char *const *c, size_t n)
{
    last_list_t *l = arg;
    int64_t t = 0;
    if (n < 3 || !as_parse_db_time(c[2], &t)) {
        return 0;
    }
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 32;
        last_sent_t *nv = om_realloc(l->v, cap * sizeof *nv);
        if (nv == NULL) {
            return OM_ENOMEM;
        }
        l->v = nv;
        l->cap = cap;
    }
    last_sent_t *s = &l->v[l->n++];
    s->group = dup_or_null(c[0]);
    s->process = dup_or_null(c[1]);
    s->at_ns = t;
    return (c[0] != NULL && s->group == NULL) || (c[1] != NULL && s->process == NULL) ? OM_ENOMEM
                                                                                      : 0;
}

static void last_free(last_list_t *l)
{
    for (size_t i = 0; i < l->n; i++) {
        om_free(l->v[i].group);
        om_free(l->v[i].process);
    }
    om_free(l->v);
}

static int64_t last_of(const last_list_t *l, const as_alarm_t *a)
{
    for (size_t i = 0; i < l->n; i++) {
        if (same(l->v[i].group, a->group) && same(l->v[i].process, a->process)) {
            return l->v[i].at_ns;
        }
    }
    return 0;
}

/* The (group, process) pairs with open alarms, oldest first. */
typedef struct pair_list {
    char **group, **process;
    size_t n, cap;
} pair_list_t;

static int read_pair(void *arg, const char *const *c, size_t n)
{
    pair_list_t *l = arg;
    if (n < 2) {
        return 0;
    }
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 32;
        char **g = om_realloc(l->group, cap * sizeof *g);
        if (g == NULL) {
            return OM_ENOMEM;
        }
        l->group = g;
        char **p = om_realloc(l->process, cap * sizeof *p);
        if (p == NULL) {
            return OM_ENOMEM;
        }
        l->process = p;
        l->cap = cap;
    }
    l->group[l->n] = dup_or_null(c[0]);
    l->process[l->n] = dup_or_null(c[1]);
    l->n++;
    return (c[0] != NULL && l->group[l->n - 1] == NULL) ||
                   (c[1] != NULL && l->process[l->n - 1] == NULL)
               ? OM_ENOMEM
               : 0;
}

static void pairs_free(pair_list_t *l)
{
    for (size_t i = 0; i < l->n; i++) {
        om_free(l->group[i]);
        om_free(l->process[i]);
    }
    om_free(l->group);
    om_free(l->process);
}

/* Reads every pair's open alarms (PAIR_LIMIT at most each) into l, pair after pair. Each
 * pair is read apart so that a flood of one pair (a thousand failures inside its window) never
 * hides another pair's first failure. */
static int read_open(const as_backend_t *be, as_conn_t *c, const pair_list_t *pairs,
                     alarm_list_t *l, om_err_t *err)
{
    char sql[700];
    snprintf(sql, sizeof sql,
             "SELECT " ALARM_COLS " FROM alarms a JOIN process_executions e"
             " ON e.id = a.process_execution_id WHERE a.state = 'open'"
             " AND (a.group_name = ? OR (a.group_name IS NULL AND ? IS NULL))"
             " AND (a.process_name = ? OR (a.process_name IS NULL AND ? IS NULL))"
             " ORDER BY a.id LIMIT %d",
             PAIR_LIMIT);
    int rc = 0;
    for (size_t i = 0; rc == 0 && i < pairs->n; i++) {
        const char *p[] = {pairs->group[i], pairs->group[i], pairs->process[i], pairs->process[i]};
        rc = be->query(c, sql, p, 4, read_alarm, l, err);
    }
    return rc;
}

int as_alarms_due(const as_backend_t *be, as_conn_t *c, const as_plan_in_t *in, as_notices_t *out,
                  om_err_t *err)
{
    pair_list_t pairs = {0};
    char sql[300];
    snprintf(sql, sizeof sql,
             "SELECT group_name, process_name, MIN(id) AS first_id FROM alarms WHERE state = 'open'"
             " GROUP BY group_name, process_name ORDER BY first_id LIMIT %d",
             PAIRS_LIMIT);
    int rc = be->query(c, sql, NULL, 0, read_pair, &pairs, err);
    alarm_list_t l = {0};
    rc = rc ? rc : read_open(be, c, &pairs, &l, err);
    if (rc != 0 || l.n == 0) {
        pairs_free(&pairs);
        list_free(&l);
        return rc;
    }
    int64_t earliest = INT64_MAX;
    for (size_t i = 0; i < l.n; i++) {
        int64_t t = 0;
        if (as_parse_db_time(l.v[i].created_at, &t) && t < earliest) {
            earliest = t;
        }
    }
    char since[32];
    as_format_time(earliest == INT64_MAX ? in->now_ns - in->window_ns : earliest - in->window_ns,
                   since);
    const char *p[] = {since};
    last_list_t last = {0};
    if (in->window_ns > 0) {
        rc = be->query(c,
                       "SELECT group_name, process_name, MAX(alert_sent_at) FROM alert_history"
                       " WHERE alert_sent_at >= ? GROUP BY group_name, process_name",
                       p, 1, read_last, &last, err);
    }
    /* The alarms come pair after pair (read_open), each pair in id order. */
    for (size_t i = 0; rc == 0 && i < l.n;) {
        size_t j = i + 1;
        while (j < l.n && same(l.v[j].group, l.v[i].group) &&
               same(l.v[j].process, l.v[i].process)) {
            j++;
        }
        if (out->n >= NOTICES_LIMIT) {
            lower_wake(out, in->now_ns); /* the rest at once, in the next call */
            break;
        }
        rc = as_plan_pair(in, &l.v[i], j - i, last_of(&last, &l.v[i]), out);
        i = j;
    }
    if (rc == OM_ENOMEM) {
        om_err_set(err, OM_ENOMEM, "out of memory planning notifications");
    }
    if (pairs.n == PAIRS_LIMIT) {
        lower_wake(out, in->now_ns + OM_NS_PER_S);
    }
    last_free(&last);
    pairs_free(&pairs);
    list_free(&l);
    return rc;
}

int as_alarms_digest(const as_backend_t *be, as_conn_t *c, int64_t now_ns, as_notice_t *out,
                     om_err_t *err)
{
    memset(out, 0, sizeof *out);
    alarm_list_t l = {0};
    char since[32], sql[512];
    as_format_time(now_ns - DAY_NS, since);
    snprintf(sql, sizeof sql,
             "SELECT " ALARM_COLS " FROM alarms a JOIN process_executions e"
             " ON e.id = a.process_execution_id WHERE a.state IN ('open', 'failed')"
             " AND a.digested_at IS NULL AND a.created_at >= ? ORDER BY a.id LIMIT %d",
             DIGEST_LIMIT);
    const char *p[] = {since};
    int rc = be->query(c, sql, p, 1, read_alarm, &l, err);
    if (rc != 0) {
        list_free(&l);
        return rc;
    }
    out->v = l.v;
    out->n = l.n;
    out->digest = true;
    return 0;
}

/* ------------------------------------------------------------------------------------------ */
/* Recording a send                                                                           */

static int record_one(const as_backend_t *be, as_conn_t *c, const as_alarm_t *a,
                      const as_outcome_t *o, unsigned notifiers, const char *now,
                      const char *retry_at_s, om_err_t *err)
{
    unsigned done = a->done | o->ok | o->gave_up << AS_NOTIFIER_GAVE_UP_SHIFT;
    unsigned settled = (done | done >> AS_NOTIFIER_GAVE_UP_SHIFT) & notifiers;
    bool any_ok = (done & notifiers) != 0;
    char id[24], done_s[16];
    snprintf(id, sizeof id, "%lld", (long long)a->id);
    snprintf(done_s, sizeof done_s, "%u", done);
    const char *last_error = o->last_error[0] != '\0' ? o->last_error : a->last_error;
    const char *state = settled != notifiers ? "open" : any_ok ? "notified" : "failed";
    const char *p[] = {state,
                       done_s,
                       last_error,
                       settled != notifiers ? retry_at_s : NULL,
                       any_ok && settled == notifiers ? now : NULL,
                       id};
    int rc = be->query(c,
                       "UPDATE alarms SET state = ?, notify_attempts = notify_attempts + 1,"
                       " notifiers_done = ?, last_error = ?, next_attempt_at = ?, notified_at = ?"
                       " WHERE id = ?",
                       p, 6, NULL, NULL, err);
    if (rc != 0 || !any_ok || settled != notifiers) {
        return rc;
    }
    char sql[400];
    snprintf(sql, sizeof sql,
             "%s INTO alert_history (process_execution_id, platform_type, group_name,"
             " process_name, end_time, alert_sent_at) SELECT process_execution_id, platform_type,"
             " group_name, process_name, end_time, ? FROM alarms WHERE id = ?",
             be->insert_ignore);
    const char *hp[] = {now, id};
    return be->query(c, sql, hp, 2, NULL, NULL, err);
}

/* A digest that went out: its alarms are reported (digested_at); in digest-only mode that is
 * their notification. */
static int record_digested(const as_backend_t *be, as_conn_t *c, const as_alarm_t *a,
                           bool digest_only, const char *now, om_err_t *err)
{
    char id[24];
    snprintf(id, sizeof id, "%lld", (long long)a->id);
    const char *p[] = {now, id};
    int rc = be->query(c, "UPDATE alarms SET digested_at = ? WHERE id = ?", p, 2, NULL, NULL, err);
    if (rc != 0 || !digest_only || a->state == NULL || strcmp(a->state, "open") != 0) {
        return rc;
    }
    rc = be->query(c,
                   "UPDATE alarms SET state = 'notified', notified_at = ?,"
                   " notify_attempts = notify_attempts + 1 WHERE id = ?",
                   p, 2, NULL, NULL, err);
    char sql[400];
    snprintf(sql, sizeof sql,
             "%s INTO alert_history (process_execution_id, platform_type, group_name,"
             " process_name, end_time, alert_sent_at) SELECT process_execution_id, platform_type,"
             " group_name, process_name, end_time, ? FROM alarms WHERE id = ?",
             be->insert_ignore);
    return rc ? rc : be->query(c, sql, p, 2, NULL, NULL, err);
}

int as_alarms_record(const as_backend_t *be, as_conn_t *c, const as_notice_t *nt,
                     const as_outcome_t *o, unsigned notifiers, bool digest_only, int64_t now_ns,
                     om_err_t *err)
{
    char now[32], retry_s[32];
    as_format_time(now_ns, now);
    as_format_time(o->retry_at_ns, retry_s);
    int rc = be->begin(c, err);
    for (size_t i = 0; rc == 0 && i < nt->n; i++) {
        if (nt->digest) {
            rc = o->ok != 0 ? record_digested(be, c, &nt->v[i], digest_only, now, err) : 0;
        } else {
            rc = record_one(be, c, &nt->v[i], o, notifiers, now, retry_s, err);
        }
    }
    rc = rc ? rc : be->commit(c, err);
    if (rc != 0) {
        be->rollback(c);
    }
    return rc;
}
