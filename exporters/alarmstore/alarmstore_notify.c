/* alarmstore_notify.c: the alarms' notifications, on the loop (alarmstore.h, "Alarms").
 *
 * One cycle at a time: a job on the exporter's database thread reads the open alarms and
 * plans the notices due now (as_alarms_due: first failure of a (group, process) at once, the
 * others of its dedup window counted at the window's end, retries when their time comes);
 * back on the loop each notice goes to the notifiers that still owe it (the core's HTTP
 * client for the webhook, its mail client for e-mail: both asynchronous on the loop, so
 * storing never waits for a notifier); when a notice's sends are all answered, a job records
 * the outcome (as_alarms_record: notified, retried later with backoff, or given up). When the
 * cycle's notices are all recorded, the next cycle runs at once if new alarms were stored
 * meanwhile (as_notifier_kick), else when the plan says something falls due (the end of a
 * window, a retry), else after POLL_MS (a safety net; alarms are kicked when stored).
 *
 * The digest runs at notify::digest::at (UTC) each day, by the wall clock: one notice of the
 * last 24 hours' alarms that are not notified (state open: waiting for a window, a retry, or,
 * with immediate: false, for the digest itself; state failed: given up) and not in an earlier
 * digest. Nothing is sent when there are none. A digest no notifier took is tried again with
 * the retry backoff, until the next day's.
 *
 * Secrets: webhook headers, its URL (a Slack URL is a credential) and SMTP credentials are
 * never logged; log lines and last_error carry the clients' messages (host and port at most)
 * and status codes. */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "alarmstore.h"

#define POLL_MS 60000
#define STACK_LINES 20
#define N_NOTIFIERS 2

struct as_notifier {
    const exp_as_cfg_t *cfg;
    const exp_as_notify_cfg_t *nc;
    om_host_t *host;
    const char *log_name;
    void *exp;
    unsigned notifiers;
    int digest_s; /* seconds after midnight UTC; -1: no digest */
    om_http_client_t *http;
    om_mail_client_t *mail;
    uv_timer_t timer, digest_timer;
    bool timers_init;
    bool started, shutting_down;
    bool busy, again;   /* a cycle in flight; kicked meanwhile */
    size_t outstanding; /* notices of the cycle not yet recorded */
    int64_t next_wake_ns;
    bool digest_busy;
    int digest_attempts;
    struct send *rec_head, **rec_tail; /* notices answered, waiting for the record job */
    bool recording;                    /* a record job in flight */
    uv_timer_t rec_timer;              /* to submit it again when the thread's queue was full */
    int open_handles;
    om_done_fn done;
    void *done_arg;
    om_metric_counter_t *m_sent[N_NOTIFIERS], *m_failed[N_NOTIFIERS];
};

/* A notice on its way: its sends, then its record job. */
typedef struct send {
    struct send *next; /* in the notifier's record queue */
    as_notifier_t *n;
    as_notice_t nt;
    as_outcome_t o;
    int waiting; /* sends not answered yet */
} send_t;

/* The record job: every notice answered since the last one, recorded in one job (so the
 * notifier never has more than one record job queued, whatever the burst). */
typedef struct record_job {
    as_db_job_t db; /* first member */
    as_notifier_t *n;
    send_t *list;
} record_job_t;

/* The plan or digest job. */
typedef struct plan_job {
    as_db_job_t db; /* first member */
    as_notifier_t *n;
    as_plan_in_t in;
    as_notices_t out;
    as_notice_t digest;
    bool is_digest;
} plan_job_t;

static const char *const notifier_names[N_NOTIFIERS] = {"webhook", "email"};

static int64_t wall_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * OM_NS_PER_S + ts.tv_nsec;
}

static void cycle(as_notifier_t *n);
static void digest_run(as_notifier_t *n);
static void maybe_finish(as_notifier_t *n);

/* ------------------------------------------------------------------------------------------ */
/* Texts                                                                                      */

void as_rfc3339(const char *db_time, char out[40])
{
    int64_t ns;
    if (db_time == NULL || !as_parse_db_time(db_time, &ns)) {
        snprintf(out, 40, "%s", db_time != NULL ? db_time : "");
        return;
    }
    /* "YYYY-MM-DD HH:MM:SS[.ffffff]": the date and time as written, 'T' between, the fraction
     * without trailing zeros, 'Z'. */
    snprintf(out, 40, "%.10sT%.8s", db_time, db_time + 11);
    const char *frac = strchr(db_time + 19, '.');
    size_t len = strlen(out);
    if (frac != NULL) {
        size_t fl = strspn(frac + 1, "0123456789");
        while (fl > 0 && frac[fl] == '0') {
            fl--;
        }
        if (fl > 0 && len + 1 + fl < 38) {
            out[len++] = '.';
            memcpy(out + len, frac + 1, fl);
            len += fl;
        }
    }
    out[len++] = 'Z';
    out[len] = '\0';
}

static void json_str(om_strbuf_t *sb, const char *s)
{
    if (s == NULL) {
        om_strbuf_puts(sb, "null");
        return;
    }
    om_strbuf_putc(sb, '"');
    for (const unsigned char *p = (const unsigned char *)s; *p != '\0'; p++) {
        if (*p == '"' || *p == '\\') {
            om_strbuf_putc(sb, '\\');
            om_strbuf_putc(sb, (char)*p);
        } else if (*p == '\n') {
            om_strbuf_puts(sb, "\\n");
        } else if (*p < 0x20 || *p == 0x7f) {
            om_strbuf_printf(sb, "\\u%04x", *p);
        } else {
            om_strbuf_putc(sb, (char)*p);
        }
    }
    om_strbuf_putc(sb, '"');
}

static void json_time(om_strbuf_t *sb, const char *db_time)
{
    if (db_time == NULL) {
        om_strbuf_puts(sb, "null");
        return;
    }
    char t[40];
    as_rfc3339(db_time, t);
    json_str(sb, t);
}

static const char *or_dash(const char *s)
{
    return s != NULL && s[0] != '\0' ? s : "-";
}

/* The alarm a notice is told by: the latest of a counted notice. */
static const as_alarm_t *face(const as_notice_t *nt)
{
    return &nt->v[nt->n - 1];
}

/* The one-line summary: the `text` of the webhook, the e-mail's subject. */
static void summary(const as_notice_t *nt, om_strbuf_t *sb)
{
    if (nt->digest) {
        om_strbuf_printf(sb,
                         "OtelMon daily digest: %zu failed run%s not notified in the last 24 "
                         "hours",
                         nt->n, nt->n == 1 ? "" : "s");
        return;
    }
    const as_alarm_t *a = face(nt);
    if (nt->n > 1) {
        om_strbuf_printf(sb, "OtelMon: %zu failures of %s/%s", nt->n, or_dash(a->group),
                         or_dash(a->process));
    } else {
        om_strbuf_printf(sb, "OtelMon: FAILED %s/%s", or_dash(a->group), or_dash(a->process));
    }
    om_strbuf_printf(sb, " on %s", or_dash(a->host));
    if (a->error_type != NULL || a->error_message != NULL) {
        om_strbuf_printf(sb, ": %s%s%.300s", a->error_type != NULL ? a->error_type : "",
                         a->error_type != NULL && a->error_message != NULL ? ": " : "",
                         a->error_message != NULL ? a->error_message : "");
    }
}

static void json_alarm_fields(om_strbuf_t *sb, const as_alarm_t *a)
{
    const struct {
        const char *key, *val;
    } f[] = {{"group", a->group},
             {"process", a->process},
             {"host", a->host},
             {"platform", a->platform},
             {"script", a->script},
             {"error_type", a->error_type},
             {"error_message", a->error_message},
             {"trace_id", a->trace_id}};
    for (size_t i = 0; i < sizeof f / sizeof f[0]; i++) {
        om_strbuf_printf(sb, ",\"%s\":", f[i].key);
        json_str(sb, f[i].val);
    }
    om_strbuf_puts(sb, ",\"start_time\":");
    json_time(sb, a->start_time);
    om_strbuf_puts(sb, ",\"end_time\":");
    json_time(sb, a->end_time);
}

void as_notice_webhook_json(const as_notice_t *nt, om_strbuf_t *sb)
{
    om_strbuf_t text;
    om_strbuf_init(&text, 0);
    summary(nt, &text);
    if (nt->digest) {
        for (size_t i = 0; i < nt->n && i < 50; i++) {
            const as_alarm_t *a = &nt->v[i];
            char t[40];
            as_rfc3339(a->end_time, t);
            om_strbuf_printf(&text, "\n- %s/%s on %s at %s: %.200s", or_dash(a->group),
                             or_dash(a->process), or_dash(a->host), or_dash(t),
                             or_dash(a->error_message));
        }
        if (nt->n > 50) {
            om_strbuf_printf(&text, "\n- and %zu more", nt->n - 50);
        }
    }
    om_strbuf_puts(sb, "{\"text\":");
    json_str(sb, om_strbuf_str(&text));
    om_strbuf_free(&text);
    om_strbuf_printf(sb, ",\"kind\":\"%s\",\"count\":%zu", nt->digest ? "digest" : "alarm", nt->n);
    if (!nt->digest) {
        json_alarm_fields(sb, face(nt));
        om_strbuf_puts(sb, ",\"first_end_time\":");
        json_time(sb, nt->v[0].end_time);
    }
    om_strbuf_puts(sb, nt->digest ? ",\"failures\":[" : ",\"alarm_ids\":[");
    for (size_t i = 0; i < nt->n; i++) {
        if (!nt->digest) {
            om_strbuf_printf(sb, "%s%lld", i ? "," : "", (long long)nt->v[i].id);
            continue;
        }
        om_strbuf_printf(sb, "%s{\"alarm_id\":%lld", i ? "," : "", (long long)nt->v[i].id);
        json_alarm_fields(sb, &nt->v[i]);
        om_strbuf_puts(sb, ",\"state\":");
        json_str(sb, nt->v[i].state);
        om_strbuf_puts(sb, ",\"last_error\":");
        json_str(sb, nt->v[i].last_error);
        om_strbuf_putc(sb, '}');
    }
    om_strbuf_puts(sb, "]}");
}

static void html_esc(om_strbuf_t *sb, const char *s)
{
    for (const char *p = s != NULL ? s : ""; *p != '\0'; p++) {
        switch (*p) {
        case '<':
            om_strbuf_puts(sb, "&lt;");
            break;
        case '>':
            om_strbuf_puts(sb, "&gt;");
            break;
        case '&':
            om_strbuf_puts(sb, "&amp;");
            break;
        case '"':
            om_strbuf_puts(sb, "&quot;");
            break;
        case '\'':
            om_strbuf_puts(sb, "&#39;");
            break;
        default:
            om_strbuf_putc(sb, *p);
        }
    }
}

/* The first STACK_LINES lines of s, their length. */
static size_t stack_head(const char *s)
{
    size_t len = 0;
    for (int lines = 0; s[len] != '\0'; len++) {
        if (s[len] == '\n' && ++lines == STACK_LINES) {
            break;
        }
    }
    return len;
}

static void mail_alarm(const as_alarm_t *a, size_t count, const char *first_end, om_strbuf_t *text,
                       om_strbuf_t *html)
{
    char start[40], end[40], first[40];
    as_rfc3339(a->start_time, start);
    as_rfc3339(a->end_time, end);
    as_rfc3339(first_end, first);
    const struct {
        const char *label, *val;
    } f[] = {{"Group", a->group},
             {"Process", a->process},
             {"Host", a->host},
             {"Platform", a->platform},
             {"Script", a->script},
             {"Started", a->start_time ? start : NULL},
             {"Ended", a->end_time ? end : NULL},
             {"Error type", a->error_type},
             {"Error", a->error_message},
             {"Trace ID", a->trace_id}};
    om_strbuf_puts(html, "<table>\n");
    for (size_t i = 0; i < sizeof f / sizeof f[0]; i++) {
        om_strbuf_printf(text, "%-11s %s\n", f[i].label, or_dash(f[i].val));
        om_strbuf_printf(html, "<tr><th align=\"left\">%s</th><td>", f[i].label);
        html_esc(html, or_dash(f[i].val));
        om_strbuf_puts(html, "</td></tr>\n");
    }
    if (count > 1) {
        om_strbuf_printf(text, "%-11s %zu failures since %s (this is the latest)\n", "Count", count,
                         first);
        om_strbuf_printf(html, "<tr><th align=\"left\">Count</th><td>%zu failures since ", count);
        html_esc(html, first);
        om_strbuf_puts(html, " (this is the latest)</td></tr>\n");
    }
    om_strbuf_puts(html, "</table>\n");
    if (a->stack_trace != NULL && a->stack_trace[0] != '\0') {
        size_t len = stack_head(a->stack_trace);
        om_strbuf_printf(text, "\nStack trace (first %d lines):\n", STACK_LINES);
        om_strbuf_append(text, a->stack_trace, len);
        om_strbuf_putc(text, '\n');
        om_strbuf_printf(html, "<p>Stack trace (first %d lines):</p>\n<pre>", STACK_LINES);
        char *head = om_strndup(a->stack_trace, len);
        html_esc(html, head != NULL ? head : "");
        om_free(head);
        om_strbuf_puts(html, "</pre>\n");
    }
}

void as_notice_mail(const as_notice_t *nt, om_strbuf_t *subject, om_strbuf_t *text,
                    om_strbuf_t *html)
{
    summary(nt, subject);
    om_strbuf_puts(html, "<!DOCTYPE html>\n<html><body>\n<h2>");
    html_esc(html, om_strbuf_str(subject));
    om_strbuf_puts(html, "</h2>\n");
    if (!nt->digest) {
        om_strbuf_puts(text, nt->n > 1 ? "ETL runs failed.\n\n" : "An ETL run failed.\n\n");
        mail_alarm(face(nt), nt->n, nt->v[0].end_time, text, html);
    } else {
        om_strbuf_printf(text, "%zu failed runs of the last 24 hours were not notified.\n", nt->n);
        for (size_t i = 0; i < nt->n; i++) {
            om_strbuf_printf(text, "\n[%zu] %s (alarm %lld)\n", i + 1, or_dash(nt->v[i].state),
                             (long long)nt->v[i].id);
            om_strbuf_printf(html, "<h3>%zu. ", i + 1);
            html_esc(html, or_dash(nt->v[i].group));
            om_strbuf_putc(html, '/');
            html_esc(html, or_dash(nt->v[i].process));
            om_strbuf_puts(html, "</h3>\n");
            mail_alarm(&nt->v[i], 1, NULL, text, html);
            if (nt->v[i].last_error != NULL) {
                om_strbuf_printf(text, "Not notified: %s\n", nt->v[i].last_error);
            }
        }
    }
    om_strbuf_puts(text, "\n-- \nOtelMon alarmstore\n");
    om_strbuf_puts(html, "<p>-- OtelMon alarmstore</p>\n</body></html>\n");
}

/* ------------------------------------------------------------------------------------------ */
/* Database jobs                                                                              */

static int plan_fn(as_db_job_t *j, const as_backend_t *be, as_conn_t *c, om_err_t *err)
{
    plan_job_t *p = (plan_job_t *)j;
    if (p->is_digest) {
        return as_alarms_digest(be, c, p->in.now_ns, &p->digest, err);
    }
    return as_alarms_due(be, c, &p->in, &p->out, err);
}

static int record_fn(as_db_job_t *j, const as_backend_t *be, as_conn_t *c, om_err_t *err)
{
    record_job_t *r = (record_job_t *)j;
    int rc = 0;
    for (send_t *s = r->list; rc == 0 && s != NULL; s = s->next) {
        rc = as_alarms_record(be, c, &s->nt, &s->o, s->n->notifiers, !s->n->nc->immediate,
                              wall_ns(), err);
    }
    return rc;
}

/* ------------------------------------------------------------------------------------------ */
/* Scheduling                                                                                 */

static void on_timer(uv_timer_t *t)
{
    as_notifier_t *n = t->data;
    as_notifier_kick(n);
}

static void arm_ms(as_notifier_t *n, uint64_t ms)
{
    if (n->timers_init && !n->shutting_down) {
        uv_timer_start(&n->timer, on_timer, ms, 0);
    }
}

/* The cycle's last notice is recorded: the next one now, or when something falls due. */
static void cycle_end(as_notifier_t *n)
{
    n->busy = false;
    if (n->shutting_down) {
        maybe_finish(n);
        return;
    }
    if (n->again) {
        n->again = false;
        cycle(n);
        return;
    }
    uint64_t ms = POLL_MS;
    if (n->next_wake_ns > 0) {
        int64_t d = (n->next_wake_ns - wall_ns()) / OM_NS_PER_MS + 1;
        ms = d <= 0 ? 1 : (uint64_t)d < ms ? (uint64_t)d : ms;
    }
    arm_ms(n, ms);
}

static uint64_t backoff_ms(const as_notifier_t *n, int attempts)
{
    int64_t d = n->nc->retry.initial_interval;
    for (int i = 0; i < attempts && d < n->nc->retry.max_interval; i++) {
        d *= 2;
    }
    d = d < n->nc->retry.max_interval ? d : n->nc->retry.max_interval;
    return (uint64_t)(d / OM_NS_PER_MS);
}

static void on_digest_timer(uv_timer_t *t)
{
    digest_run(t->data);
}

static void digest_arm(as_notifier_t *n, uint64_t ms)
{
    if (n->timers_init && !n->shutting_down && n->digest_s >= 0) {
        uv_timer_start(&n->digest_timer, on_digest_timer, ms, 0);
    }
}

/* From now to the next digest::at (UTC, by the wall clock). */
static uint64_t ms_to_digest(const as_notifier_t *n)
{
    int64_t day = (int64_t)86400 * OM_NS_PER_S;
    int64_t d = (int64_t)n->digest_s * OM_NS_PER_S - wall_ns() % day;
    d = d <= 0 ? d + day : d;
    return (uint64_t)(d / OM_NS_PER_MS) + 1;
}

/* The digest's work is over: tried again later (retry), or done until tomorrow. */
static void digest_finished(as_notifier_t *n, bool retry)
{
    n->digest_busy = false;
    if (n->shutting_down) {
        maybe_finish(n);
        return;
    }
    if (retry) {
        uint64_t wait = backoff_ms(n, n->digest_attempts++);
        uint64_t next = ms_to_digest(n);
        digest_arm(n, wait < next ? wait : next);
    } else {
        n->digest_attempts = 0;
        digest_arm(n, ms_to_digest(n));
    }
}

static void send_free(send_t *s)
{
    for (size_t i = 0; i < s->nt.n; i++) {
        as_alarm_free(&s->nt.v[i]);
    }
    om_free(s->nt.v);
    om_free(s);
}

/* A notice's work is over (recorded, or not to be). */
static void notice_over(as_notifier_t *n, send_t *s, bool retry_digest)
{
    bool digest = s->nt.digest;
    send_free(s);
    if (digest) {
        digest_finished(n, retry_digest);
    } else if (--n->outstanding == 0) {
        cycle_end(n);
    }
}

static void start_record(as_notifier_t *n);

static void record_done(as_db_job_t *j, int rc)
{
    record_job_t *r = (record_job_t *)j;
    as_notifier_t *n = r->n;
    if (rc != 0) {
        OM_CLOG(n->log_name, OM_LOG_WARN,
                "cannot record notifications in the database (they may be sent again): %s",
                j->err.msg[0] ? j->err.msg : om_strerror(rc));
    }
    send_t *list = r->list;
    om_free(r);
    n->recording = false;
    while (list != NULL) {
        send_t *s = list;
        list = s->next;
        notice_over(n, s, false);
    }
    start_record(n);
}

static void on_rec_timer(uv_timer_t *t)
{
    start_record(t->data);
}

/* Submit the queued notices' record job, unless one is in flight. */
static void start_record(as_notifier_t *n)
{
    if (n->recording || n->rec_head == NULL) {
        return;
    }
    record_job_t *r = om_calloc(1, sizeof *r);
    if (r != NULL) {
        r->n = n;
        r->list = n->rec_head;
        r->db.fn = record_fn;
        r->db.done = record_done;
    }
    if (r == NULL || exp_as_db_submit(n->exp, &r->db) != 0) {
        /* Out of memory or the thread's queue full (storing comes first): soon again. */
        om_free(r);
        if (n->timers_init) {
            uv_timer_start(&n->rec_timer, on_rec_timer, 100, 0);
        }
        return;
    }
    n->rec_head = NULL;
    n->rec_tail = &n->rec_head;
    n->recording = true;
}

/* Every send of a notice answered: record it (a digest no notifier took is not recorded: it
 * is tried again). */
static void notice_answered(send_t *s)
{
    as_notifier_t *n = s->n;
    int attempts = 0;
    for (size_t i = 0; i < s->nt.n; i++) {
        attempts = s->nt.v[i].attempts > attempts ? s->nt.v[i].attempts : attempts;
    }
    if (s->nt.digest) {
        attempts = n->digest_attempts;
    }
    uint64_t wait = backoff_ms(n, attempts);
    s->o.retry_at_ns = wall_ns() + (int64_t)wait * OM_NS_PER_MS;
    if (!s->nt.digest && ((s->o.ok | s->o.gave_up) & s->nt.need) != s->nt.need &&
        (n->next_wake_ns == 0 || s->o.retry_at_ns < n->next_wake_ns)) {
        n->next_wake_ns = s->o.retry_at_ns; /* the cycle's end wakes for the retry */
    }
    if (s->nt.digest && s->o.ok == 0) {
        notice_over(n, s, true);
        return;
    }
    s->next = NULL;
    *n->rec_tail = s;
    n->rec_tail = &s->next;
    start_record(n);
}

static void count(as_notifier_t *n, unsigned bit, bool ok)
{
    int i = bit == AS_NOTIFIER_WEBHOOK ? 0 : 1;
    om_metric_counter_add(ok ? n->m_sent[i] : n->m_failed[i], 1);
}

/* One notifier's answer. */
static void answered(send_t *s, unsigned bit, bool ok, bool permanent, const char *why)
{
    as_notifier_t *n = s->n;
    count(n, bit, ok);
    if (ok) {
        s->o.ok |= bit;
    } else {
        if (permanent) {
            s->o.gave_up |= bit;
        }
        const char *name = notifier_names[bit == AS_NOTIFIER_WEBHOOK ? 0 : 1];
        size_t len = strlen(s->o.last_error);
        snprintf(s->o.last_error + len, sizeof s->o.last_error - len, "%s%s: %s%s", len ? "; " : "",
                 name, why, permanent ? " (refused for good: given up)" : "");
        OM_CLOG(n->log_name, OM_LOG_WARN, "notify: %s %s %s: %s%s", name,
                s->nt.digest ? "digest" : "alarm", permanent ? "refused" : "failed", why,
                permanent ? " (given up)" : " (will be retried)");
    }
    if (--s->waiting == 0) {
        notice_answered(s);
    }
}

static void on_http(void *arg, const om_http_response_t *r)
{
    send_t *s = arg;
    char why[200];
    if (r->error == 0 && r->status / 100 == 2) {
        answered(s, AS_NOTIFIER_WEBHOOK, true, false, "");
        return;
    }
    bool permanent;
    if (r->error == 0) {
        permanent = r->status / 100 == 4 && r->status != 408 && r->status != 429;
        snprintf(why, sizeof why, "HTTP %d", r->status);
    } else {
        permanent = !r->retryable && r->error != OM_ESHUTDOWN;
        snprintf(why, sizeof why, "%s",
                 r->message != NULL && r->message[0] ? r->message : om_strerror(r->error));
    }
    answered(s, AS_NOTIFIER_WEBHOOK, false, permanent, why);
}

static void on_mail(void *arg, const om_mail_result_t *r)
{
    send_t *s = arg;
    if (r->error == 0) {
        answered(s, AS_NOTIFIER_EMAIL, true, false, "");
        return;
    }
    char why[200];
    snprintf(why, sizeof why, "%s",
             r->message != NULL && r->message[0] ? r->message : om_strerror(r->error));
    answered(s, AS_NOTIFIER_EMAIL, false, !r->retryable && r->error != OM_ESHUTDOWN, why);
}

static int send_webhook(send_t *s, om_err_t *err)
{
    as_notifier_t *n = s->n;
    om_strbuf_t body;
    om_strbuf_init(&body, 0);
    as_notice_webhook_json(&s->nt, &body);
    if (body.failed) {
        om_strbuf_free(&body);
        om_err_set(err, OM_ENOMEM, "out of memory");
        return OM_ENOMEM;
    }
    size_t len = 0;
    char *data = om_strbuf_steal(&body, &len);
    if (data == NULL) {
        om_err_set(err, OM_ENOMEM, "out of memory");
        return OM_ENOMEM;
    }
    om_http_header_t h[] = {{"Content-Type", "application/json"}};
    om_http_request_t rq = {.method = "POST",
                            .url = n->nc->webhook.endpoint,
                            .headers = h,
                            .n_headers = 1,
                            .body = data,
                            .body_len = len,
                            .body_mode = OM_HTTP_BODY_TAKE,
                            .timeout_ms = (uint64_t)(n->nc->webhook.timeout / OM_NS_PER_MS),
                            .max_response_body = 4096};
    return om_http_send(n->http, &rq, on_http, s, NULL, err);
}

static int send_mail(send_t *s, om_err_t *err)
{
    om_strbuf_t subject, text, html;
    om_strbuf_init(&subject, 0);
    om_strbuf_init(&text, 0);
    om_strbuf_init(&html, 0);
    as_notice_mail(&s->nt, &subject, &text, &html);
    int rc = OM_ENOMEM;
    if (subject.failed || text.failed || html.failed) {
        om_err_set(err, OM_ENOMEM, "out of memory");
    } else {
        om_mail_msg_t m = {.subject = om_strbuf_str(&subject),
                           .text = om_strbuf_str(&text),
                           .html = om_strbuf_str(&html)};
        rc = om_mail_send(s->n->mail, &m, on_mail, s, err);
    }
    om_strbuf_free(&subject);
    om_strbuf_free(&text);
    om_strbuf_free(&html);
    return rc;
}

/* Sends a notice (taken) to the notifiers that owe it. Its answers come later; a send that
 * cannot start is answered at once as a failure to retry. */
static void send_notice(as_notifier_t *n, as_notice_t *nt)
{
    send_t *s = om_calloc(1, sizeof *s);
    if (s == NULL) {
        for (size_t i = 0; i < nt->n; i++) {
            as_alarm_free(&nt->v[i]);
        }
        om_free(nt->v);
        if (nt->digest) {
            digest_finished(n, true);
        } else if (--n->outstanding == 0) {
            cycle_end(n);
        }
        return;
    }
    s->n = n;
    s->nt = *nt;
    memset(nt, 0, sizeof *nt);
    unsigned need = s->nt.need & n->notifiers;
    s->waiting = 1; /* held until every send started */
    const struct {
        unsigned bit;
        int (*fn)(send_t *, om_err_t *);
    } via[] = {{AS_NOTIFIER_WEBHOOK, send_webhook}, {AS_NOTIFIER_EMAIL, send_mail}};
    for (size_t i = 0; i < sizeof via / sizeof via[0]; i++) {
        if ((need & via[i].bit) == 0) {
            continue;
        }
        s->waiting++;
        om_err_t err = {0};
        if (via[i].fn(s, &err) != 0) {
            answered(s, via[i].bit, false, false, err.msg[0] ? err.msg : "cannot start the send");
        }
    }
    if (--s->waiting == 0) {
        notice_answered(s);
    }
}

static void plan_done(as_db_job_t *j, int rc)
{
    plan_job_t *p = (plan_job_t *)j;
    as_notifier_t *n = p->n;
    if (p->is_digest) {
        as_notice_t d = p->digest;
        om_free(p);
        if (rc != 0 || d.n == 0) {
            om_free(d.v);
            if (rc != 0) {
                OM_CLOG(n->log_name, OM_LOG_WARN, "digest: cannot read the alarms: %s",
                        j->err.msg[0] ? j->err.msg : om_strerror(rc));
            }
            digest_finished(n, rc != 0);
            return;
        }
        d.need = n->notifiers;
        send_notice(n, &d);
        return;
    }
    if (rc != 0) {
        OM_CLOG(n->log_name, OM_LOG_WARN, "notify: cannot read the open alarms: %s",
                p->db.err.msg[0] ? p->db.err.msg : om_strerror(rc));
        as_notices_free(&p->out);
        om_free(p);
        n->next_wake_ns = wall_ns() + (int64_t)backoff_ms(n, 0) * OM_NS_PER_MS;
        cycle_end(n);
        return;
    }
    n->next_wake_ns = p->out.next_wake_ns;
    as_notices_t out = p->out;
    om_free(p);
    if (out.n == 0) {
        om_free(out.v);
        cycle_end(n);
        return;
    }
    n->outstanding = out.n;
    for (size_t i = 0; i < out.n; i++) {
        send_notice(n, &out.v[i]);
    }
    om_free(out.v);
}

/* ------------------------------------------------------------------------------------------ */
/* Cycles, the digest, the lifecycle                                                          */

static plan_job_t *plan_job(as_notifier_t *n, bool digest)
{
    plan_job_t *p = om_calloc(1, sizeof *p);
    if (p == NULL) {
        return NULL;
    }
    p->n = n;
    p->is_digest = digest;
    p->in.now_ns = wall_ns();
    p->in.window_ns = n->nc->dedup_window;
    p->in.notifiers = n->notifiers;
    p->db.exp = n->exp;
    p->db.fn = plan_fn;
    p->db.done = plan_done;
    return p;
}

static void cycle(as_notifier_t *n)
{
    if (n->busy || n->shutting_down || !n->nc->immediate) {
        return;
    }
    plan_job_t *p = plan_job(n, false);
    if (p == NULL || exp_as_db_submit(n->exp, &p->db) != 0) {
        /* Out of memory, or the database thread's queue is full (storing comes first). */
        om_free(p);
        arm_ms(n, 1000);
        return;
    }
    n->busy = true;
    n->next_wake_ns = 0;
}

static void digest_run(as_notifier_t *n)
{
    if (n->digest_busy || n->shutting_down) {
        return;
    }
    plan_job_t *p = plan_job(n, true);
    if (p == NULL || exp_as_db_submit(n->exp, &p->db) != 0) {
        om_free(p);
        digest_arm(n, 1000);
        return;
    }
    n->digest_busy = true;
}

void as_notifier_kick(as_notifier_t *n)
{
    if (n == NULL || !n->started || n->shutting_down) {
        return;
    }
    if (n->busy) {
        n->again = true;
        return;
    }
    cycle(n);
}

static const om_metric_def_t sent_def = {
    .name = "otelcol_exporter_alarmstore_notifications_sent",
    .help = "Notifications (an alarm, a counted group of alarms, or a digest) a notifier took",
    .unit = "{notifications}",
    .type = OM_METRIC_COUNTER};
static const om_metric_def_t failed_def = {
    .name = "otelcol_exporter_alarmstore_notifications_failed",
    .help = "Notification attempts that failed (retried, or given up when refused for good)",
    .unit = "{notifications}",
    .type = OM_METRIC_COUNTER};

int as_notifier_new(const as_notifier_args_t *a, as_notifier_t **out, om_err_t *err)
{
    *out = NULL;
    if (!a->cfg->has_notify) {
        return 0;
    }
    as_notifier_t *n = om_calloc(1, sizeof *n);
    if (n == NULL) {
        om_err_set(err, OM_ENOMEM, "out of memory");
        return OM_ENOMEM;
    }
    n->cfg = a->cfg;
    n->nc = &a->cfg->notify;
    n->host = a->host;
    n->log_name = a->log_name;
    n->exp = a->exp;
    n->notifiers =
        (n->nc->has_webhook ? AS_NOTIFIER_WEBHOOK : 0) | (n->nc->has_email ? AS_NOTIFIER_EMAIL : 0);
    n->digest_s = n->nc->digest_at != NULL ? as_parse_daytime(n->nc->digest_at) : -1;
    n->rec_tail = &n->rec_head;
    int rc = 0;
    for (int i = 0; rc == 0 && a->host->metrics != NULL && i < N_NOTIFIERS; i++) {
        if ((n->notifiers & (1u << i)) == 0) {
            continue;
        }
        om_label_t l[] = {{"exporter", a->id}, {"notifier", notifier_names[i]}};
        rc = om_metrics_counter(a->host->metrics, &sent_def, l, 2, &n->m_sent[i], err);
        rc =
            rc ? rc : om_metrics_counter(a->host->metrics, &failed_def, l, 2, &n->m_failed[i], err);
    }
    if (rc != 0) {
        om_free(n);
        return rc;
    }
    *out = n;
    return 0;
}

int as_notifier_start(as_notifier_t *n, om_err_t *err)
{
    if (n == NULL) {
        return 0;
    }
    int rc = 0;
    if (n->nc->has_webhook) {
        om_http_client_opts_t o = {.log_name = n->log_name, .max_conns_per_host = 4};
        rc = om_http_client_new(n->host, &n->nc->webhook.http, &o, &n->http, err);
    }
    if (rc == 0 && n->nc->has_email) {
        rc = om_mail_client_new(n->host, &n->nc->email, n->log_name, &n->mail, err);
    }
    if (rc != 0) {
        return rc;
    }
    uv_timer_init(n->host->loop, &n->timer);
    uv_timer_init(n->host->loop, &n->digest_timer);
    uv_timer_init(n->host->loop, &n->rec_timer);
    n->timer.data = n;
    n->digest_timer.data = n;
    n->rec_timer.data = n;
    n->timers_init = true;
    n->started = true;
    digest_arm(n, ms_to_digest(n));
    return 0;
}

static void finish(as_notifier_t *n)
{
    om_done_fn done = n->done;
    n->done = NULL;
    if (done != NULL) {
        done(n->done_arg);
    }
}

static void closed_one(as_notifier_t *n)
{
    if (--n->open_handles == 0) {
        finish(n);
    }
}

static void handle_closed(uv_handle_t *h)
{
    closed_one(h->data);
}

static void client_closed(void *arg)
{
    closed_one(arg);
}

/* When nothing is in flight any more: close the clients and timers, then done. */
static void maybe_finish(as_notifier_t *n)
{
    if (!n->shutting_down || n->busy || n->digest_busy || n->done == NULL || n->open_handles > 0) {
        return;
    }
    n->open_handles = 1; /* held while closing starts */
    if (n->timers_init) {
        n->open_handles += 3;
        uv_close((uv_handle_t *)&n->timer, handle_closed);
        uv_close((uv_handle_t *)&n->digest_timer, handle_closed);
        uv_close((uv_handle_t *)&n->rec_timer, handle_closed);
        n->timers_init = false;
    }
    if (n->http != NULL) {
        n->open_handles++;
        om_http_client_close(n->http, client_closed, n);
        n->http = NULL;
    }
    if (n->mail != NULL) {
        n->open_handles++;
        om_mail_client_close(n->mail, client_closed, n);
        n->mail = NULL;
    }
    closed_one(n);
}

void as_notifier_shutdown(as_notifier_t *n, om_done_fn done, void *arg)
{
    if (n->shutting_down) {
        return;
    }
    n->shutting_down = true;
    n->done = done;
    n->done_arg = arg;
    if (n->timers_init) {
        uv_timer_stop(&n->timer);
        uv_timer_stop(&n->digest_timer);
    }
    maybe_finish(n);
}

void as_notifier_free(as_notifier_t *n)
{
    om_free(n);
}
