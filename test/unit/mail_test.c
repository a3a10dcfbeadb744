/* mail_test.c: the core's mail client (om_mail_*) against a real SMTP server on loopback
 * (Debian's python3-aiosmtpd, test/lib/smtp_server.py, started and stopped by each test).
 *
 * Covered: the message (headers, folding, base64 bodies with CRLF line ends, RFC 2047
 * subjects over UTF-8 boundaries, invalid UTF-8 replaced, no header injection through a
 * subject, multipart/alternative); the settings' rules; sends in clear to loopback with AUTH,
 * with STARTTLS (required, checked against a test CA), with implicit TLS (smtps://); refused
 * credentials, a server without STARTTLS and a 5xx recipient refusal are permanent, a 4xx and a
 * refused connection retryable; close with a send in flight. Every test ends with
 * uv_loop_close() == 0. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdarg.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "config.h"
#include "om.h"
#include "om_test.h"
#include "om_testcerts.h"

#define WAIT_MS 15000

extern char **environ;

typedef struct tcfg {
    om_mail_cfg_t mail;
} tcfg_t;

static const om_field_t tfields[] = {
    {.key = "email",
     .type = OM_F_SECTION,
     .offset = offsetof(tcfg_t, mail),
     .fields = om_mail_fields},
    {.key = NULL},
};

static om_testcerts_t certs;
static bool have_certs;

/* ------------------------------------------------------------------------------------------ */
/* The SMTP server                                                                            */

typedef struct smtpd {
    pid_t pid;
    int port;
    char dir[64];
} smtpd_t;

/* Start smtp_server.py with the options after dir (NULL-terminated); false when it does not
 * report its port within WAIT_MS. */
static bool smtpd_start(smtpd_t *s, ...)
{
    memset(s, 0, sizeof *s);
    snprintf(s->dir, sizeof s->dir, "/tmp/om-smtp-XXXXXX");
    if (mkdtemp(s->dir) == NULL) {
        return false;
    }
    const char *argv[24] = {
        "/usr/bin/python3", "-W", "ignore", OM_TEST_LIB_DIR "/smtp_server.py", "--dir", s->dir};
    size_t n = 6;
    va_list ap;
    va_start(ap, s);
    for (const char *a; n < 23 && (a = va_arg(ap, const char *)) != NULL;) {
        argv[n++] = a;
    }
    va_end(ap);
    int fds[2];
    if (pipe(fds) != 0) {
        return false;
    }
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, fds[1], 1);
    posix_spawn_file_actions_addclose(&fa, fds[0]);
    int rc = posix_spawn(&s->pid, argv[0], &fa, NULL, (char *const *)argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    close(fds[1]);
    if (rc != 0) {
        close(fds[0]);
        return false;
    }
    char line[64] = {0};
    size_t got = 0;
    struct pollfd p = {.fd = fds[0], .events = POLLIN};
    while (got < sizeof line - 1 && strchr(line, '\n') == NULL && poll(&p, 1, WAIT_MS) == 1) {
        ssize_t r = read(fds[0], line + got, sizeof line - 1 - got);
        if (r <= 0) {
            break;
        }
        got += (size_t)r;
    }
    close(fds[0]);
    if (sscanf(line, "PORT %d", &s->port) != 1) {
        fprintf(stderr, "smtp_server.py did not start: \"%s\"\n", line);
        return false;
    }
    return true;
}

static void smtpd_stop(smtpd_t *s)
{
    if (s->pid > 0) {
        kill(s->pid, SIGTERM);
        waitpid(s->pid, NULL, 0);
        s->pid = 0;
    }
    DIR *d = opendir(s->dir);
    struct dirent *e;
    while (d != NULL && (e = readdir(d)) != NULL) {
        if (e->d_name[0] != '.' || strstr(e->d_name, ".tmp") != NULL) {
            char p[400];
            snprintf(p, sizeof p, "%s/%s", s->dir, e->d_name);
            unlink(p);
        }
    }
    if (d != NULL) {
        closedir(d);
    }
    rmdir(s->dir);
}

/* The n-th message the server stored (malloc'd, NUL-terminated), or NULL. */
static char *smtpd_message(const smtpd_t *s, int n)
{
    char p[128];
    snprintf(p, sizeof p, "%s/%d.eml", s->dir, n);
    FILE *f = fopen(p, "rb");
    if (f == NULL) {
        return NULL;
    }
    char *buf = calloc(1, 1 << 20);
    size_t len = fread(buf, 1, (1 << 20) - 1, f);
    buf[len] = '\0';
    fclose(f);
    return buf;
}

static int smtpd_count(const smtpd_t *s)
{
    int n = 0;
    DIR *d = opendir(s->dir);
    struct dirent *e;
    while (d != NULL && (e = readdir(d)) != NULL) {
        n += strstr(e->d_name, ".eml") != NULL && e->d_name[0] != '.';
    }
    if (d != NULL) {
        closedir(d);
    }
    return n;
}

/* ------------------------------------------------------------------------------------------ */
/* Fixture                                                                                    */

typedef struct got {
    int calls;
    int error;
    bool retryable;
    int smtp_code;
    char message[256];
} got_t;

typedef struct fx {
    uv_loop_t loop;
    om_host_t host;
    uv_timer_t tick; /* keeps UV_RUN_ONCE returning so deadlines are checked */
    tcfg_t cfg;
    om_config_t *yaml;
    om_mail_client_t *client;
    int closed;
} fx_t;

#define RUN_UNTIL(fx, cond, max_ms) OM_TEST_RUN_UNTIL(&(fx)->loop, cond, max_ms)

static void tick_cb(uv_timer_t *t)
{
    (void)t;
}

static void fx_init(fx_t *fx)
{
    memset(fx, 0, sizeof *fx);
    uv_loop_init(&fx->loop);
    om_test_host_init(&fx->host, &fx->loop);
    uv_timer_init(&fx->loop, &fx->tick);
    uv_timer_start(&fx->tick, tick_cb, 5, 5);
}

/* Loads `email: {...}` (printf-style YAML) and validates it; the error as "at: msg". */
static int fx_config(fx_t *fx, char *errbuf, size_t errlen, const char *fmt, ...) OM_PRINTF(4, 5);

static int fx_config(fx_t *fx, char *errbuf, size_t errlen, const char *fmt, ...)
{
    char text[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(text, sizeof text, fmt, ap);
    va_end(ap);
    om_diags_t d = {0};
    om_fields_free(tfields, &fx->cfg);
    om_config_free(fx->yaml);
    fx->yaml = NULL;
    memset(&fx->cfg, 0, sizeof fx->cfg);
    errbuf[0] = '\0';
    int rc = om_config_load_string("t.yaml", text, strlen(text), &fx->yaml, &d);
    if (rc == 0 && om_fields_apply(tfields, &fx->cfg, fx->yaml->root, "", &d) != 0) {
        rc = OM_ECONFIG;
    }
    if (d.n > 0) {
        snprintf(errbuf, errlen, "%s", d.msgs[0]);
    }
    om_diags_free(&d);
    if (rc == 0) {
        om_err_t verr = {0};
        rc = om_mail_cfg_validate(&fx->cfg.mail, "email", &verr);
        if (rc != 0) {
            snprintf(errbuf, errlen, "%s: %s", verr.at, verr.msg);
        }
    }
    return rc;
}

static int fx_client(fx_t *fx, const char *fmt, ...) OM_PRINTF(2, 3);

static int fx_client(fx_t *fx, const char *fmt, ...)
{
    char text[2048], e[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(text, sizeof text, fmt, ap);
    va_end(ap);
    int rc = fx_config(fx, e, sizeof e, "%s", text);
    om_err_t err = {0};
    rc = rc ? rc : om_mail_client_new(&fx->host, &fx->cfg.mail, "mail test", &fx->client, &err);
    if (rc != 0) {
        fprintf(stderr, "client: %s%s\n", e, err.msg);
    }
    return rc;
}

static void closed_cb(void *arg)
{
    (*(int *)arg)++;
}

static int fx_finish(fx_t *fx)
{
    if (fx->client != NULL) {
        om_mail_client_close(fx->client, closed_cb, &fx->closed);
        RUN_UNTIL(fx, fx->closed > 0, WAIT_MS);
    }
    om_fields_free(tfields, &fx->cfg);
    om_config_free(fx->yaml);
    uv_close((uv_handle_t *)&fx->tick, NULL);
    uv_run(&fx->loop, UV_RUN_DEFAULT);
    om_test_host_close(&fx->host);
    return uv_loop_close(&fx->loop);
}

static void on_done(void *arg, const om_mail_result_t *r)
{
    got_t *g = arg;
    g->calls++;
    g->error = r->error;
    g->retryable = r->retryable;
    g->smtp_code = r->smtp_code;
    snprintf(g->message, sizeof g->message, "%s", r->message);
}

/* ------------------------------------------------------------------------------------------ */
/* Reading messages back                                                                      */

/* The body of the part whose Content-Type starts with type, base64-decoded (malloc'd). */
static char *part_body(const char *msg, const char *type)
{
    char needle[64];
    snprintf(needle, sizeof needle, "Content-Type: %s", type);
    const char *p = strstr(msg, needle);
    p = p != NULL ? strstr(p, "\r\n\r\n") : NULL;
    if (p == NULL) {
        return NULL;
    }
    p += 4;
    char *out = calloc(1, strlen(p) + 1);
    size_t o = 0;
    while (*p != '\0' && *p != '-' && *p != '\r') {
        const char *e = strstr(p, "\r\n");
        size_t n = e != NULL ? (size_t)(e - p) : strlen(p);
        int w = EVP_DecodeBlock((unsigned char *)out + o, (const unsigned char *)p, (int)n);
        if (w < 0) {
            free(out);
            return NULL;
        }
        o += (size_t)w - (n >= 2 && p[n - 1] == '=') - (n >= 2 && p[n - 2] == '=');
        p = e != NULL ? e + 2 : p + n;
    }
    out[o] = '\0';
    return out;
}

/* The subject, its encoded words decoded (static buffer). */
static const char *subject_of(const char *msg)
{
    static char out[2048];
    const char *p = strstr(msg, "\r\nSubject:");
    out[0] = '\0';
    if (p == NULL) {
        return out;
    }
    p += 10;
    size_t o = 0;
    for (;;) {
        p += strspn(p, " ");
        const char *e = strstr(p, "\r\n");
        if (strncmp(p, "=?UTF-8?B?", 10) == 0) {
            const char *end = strstr(p + 10, "?=");
            int w = EVP_DecodeBlock((unsigned char *)out + o, (const unsigned char *)p + 10,
                                    (int)(end - p - 10));
            o += (size_t)w - (end[-1] == '=') - (end[-2] == '=');
        } else {
            memcpy(out + o, p, (size_t)(e - p));
            o += (size_t)(e - p);
        }
        out[o] = '\0';
        if (e[2] != ' ') {
            return out;
        }
        p = e + 2;
    }
}

static bool lines_short(const char *msg)
{
    for (const char *p = msg; *p != '\0';) {
        const char *e = strstr(p, "\r\n");
        if (e == NULL || e - p > 78) {
            return e == NULL && strlen(p) <= 78;
        }
        p = e + 2;
    }
    return true;
}

/* ------------------------------------------------------------------------------------------ */
/* The message                                                                                */

static char *format(fx_t *fx, const om_mail_msg_t *m)
{
    om_strbuf_t sb;
    om_strbuf_init(&sb, 0);
    if (om_mail_format(&fx->cfg.mail, m, 1796000000, 0x1234, &sb) != 0) {
        om_strbuf_free(&sb);
        return NULL;
    }
    return om_strbuf_steal(&sb, NULL);
}

static void test_format_text_only(void)
{
    fx_t fx;
    fx_init(&fx);
    char e[256];
    ASSERT_EQ_INT(fx_config(&fx, e, sizeof e,
                            "email: {endpoint: smtp://127.0.0.1:25, from: otelmon@example.com, "
                            "to: [ops@example.com, dba@example.org]}"),
                  0);
    om_mail_msg_t m = {.subject = "ETL failed: sales/load_orders",
                       .text = "group: sales\nprocess: load_orders\r\n.\nend"};
    char *msg = format(&fx, &m);
    ASSERT_TRUE(msg != NULL);
    ASSERT_CONTAINS(msg, "Date: Mon, 30 Nov 2026 00:53:20 +0000\r\n");
    ASSERT_CONTAINS(msg, "\r\nFrom: otelmon@example.com\r\n");
    ASSERT_CONTAINS(msg, "\r\nTo: ops@example.com,\r\n dba@example.org\r\n");
    ASSERT_CONTAINS(msg, "\r\nSubject: ETL failed: sales/load_orders\r\n");
    ASSERT_CONTAINS(msg, "\r\nMessage-ID: <0000000000001234.1796000000@example.com>\r\n");
    ASSERT_CONTAINS(msg, "\r\nMIME-Version: 1.0\r\n");
    ASSERT_TRUE(strstr(msg, "multipart") == NULL);
    char *body = part_body(msg, "text/plain; charset=utf-8");
    ASSERT_EQ_STR(body, "group: sales\r\nprocess: load_orders\r\n.\r\nend");
    ASSERT_TRUE(lines_short(msg));
    free(body);
    om_free(msg);
    ASSERT_EQ_INT(fx_finish(&fx), 0);
}

static void test_format_subjects(void)
{
    fx_t fx;
    fx_init(&fx);
    char e[256];
    ASSERT_EQ_INT(fx_config(&fx, e, sizeof e,
                            "email: {endpoint: smtp://127.0.0.1:25, from: a@b.c, to: [d@e.f]}"),
                  0);
    static const struct {
        const char *in, *out;
    } cases[] = {
        /* A line break cannot start a header of its own. */
        {"x\r\nBcc: evil@example.com", "x Bcc: evil@example.com"},
        {"a\nb\rc", "a b c"},
        /* Korean (3-byte sequences) long enough for several encoded words. */
        {"적재 실패: 매출 집계 작업이 실패했습니다 다시 시도하세요 곧 확인 바랍니다",
         "적재 실패: 매출 집계 작업이 실패했습니다 다시 시도하세요 곧 확인 바랍니다"},
        /* Invalid UTF-8 and control characters. */
        {"bad \xff\xfe byte \x01 end", "bad \xef\xbf\xbd\xef\xbf\xbd byte  end"},
        {"\xed\xa0\x80 surrogate", "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd surrogate"},
        {"", ""},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        om_mail_msg_t m = {.subject = cases[i].in, .text = "t"};
        char *msg = format(&fx, &m);
        ASSERT_TRUE(msg != NULL);
        ASSERT_TRUE(strstr(msg, "\r\nBcc:") == NULL);
        ASSERT_TRUE(lines_short(msg));
        ASSERT_EQ_STR(subject_of(msg), cases[i].out);
        om_free(msg);
    }
    ASSERT_EQ_INT(fx_finish(&fx), 0);
}

static void test_format_multipart(void)
{
    fx_t fx;
    fx_init(&fx);
    char e[256];
    ASSERT_EQ_INT(
        fx_config(&fx, e, sizeof e,
                  "email: {endpoint: smtps://mail.example.com, from: a@b.c, to: [d@e.f]}"),
        0);
    char longline[3000];
    memset(longline, 'x', sizeof longline - 1);
    longline[sizeof longline - 1] = '\0';
    om_mail_msg_t m = {.subject = "s", .text = longline, .html = "<p>Fehler in <b>load</b> ü</p>"};
    char *msg = format(&fx, &m);
    ASSERT_TRUE(msg != NULL);
    ASSERT_CONTAINS(msg,
                    "Content-Type: multipart/alternative; boundary=\"=_otelmon_0000000000001234\"");
    ASSERT_CONTAINS(msg, "\r\n--=_otelmon_0000000000001234\r\nContent-Type: text/plain");
    ASSERT_CONTAINS(msg, "\r\n--=_otelmon_0000000000001234\r\nContent-Type: text/html");
    ASSERT_CONTAINS(msg, "\r\n--=_otelmon_0000000000001234--\r\n");
    ASSERT_TRUE(lines_short(msg));
    char *text = part_body(msg, "text/plain"), *html = part_body(msg, "text/html");
    ASSERT_EQ_STR(text, longline);
    ASSERT_EQ_STR(html, "<p>Fehler in <b>load</b> ü</p>");
    free(text);
    free(html);
    om_free(msg);
    ASSERT_EQ_INT(fx_finish(&fx), 0);
}

/* ------------------------------------------------------------------------------------------ */
/* Settings                                                                                   */

static void test_validate(void)
{
    static const struct {
        const char *yaml, *err; /* err NULL: valid */
    } cases[] = {
        {"email: {}", NULL}, /* no endpoint: no mail */
        {"email: {endpoint: smtp://mail:25, from: a@b.c, to: [d@e.f]}", NULL},
        {"email: {endpoint: smtps://mail, from: a@b.c, to: [d@e.f], username: u, password: p}",
         NULL},
        {"email: {endpoint: smtp://127.0.0.1:2525, starttls: false, from: a@b.c, to: [d@e.f], "
         "username: u, password: p}",
         NULL},
        {"email: {endpoint: smtp://mail:25, starttls: false, from: a@b.c, to: [d@e.f], "
         "username: u, password: p}",
         "email::starttls: is false: the username and password would cross the network in clear"},
        {"email: {endpoint: http://mail:25, from: a@b.c, to: [d@e.f]}",
         "email::endpoint: must be smtp://host[:port] or smtps://host[:port]"},
        {"email: {endpoint: smtp://mail:25/x?y, from: a@b.c, to: [d@e.f]}",
         "email::endpoint: must be smtp://"},
        {"email: {endpoint: smtp://mail:25, from: 'a b@c', to: [d@e.f]}", "email::from: must be"},
        {"email: {endpoint: smtp://mail:25, to: [d@e.f]}", "email::from: must be"},
        {"email: {endpoint: smtp://mail:25, from: a@b.c}", "email::to: needs at least one"},
        {"email: {endpoint: smtp://mail:25, from: a@b.c, to: [d@e.f, \"x>\\r\\nRCPT TO:<y@z\"]}",
         "email::to::1: must be an address"},
        {"email: {endpoint: smtp://mail:25, from: a@b.c, to: [d@e.f], password: p}",
         "email::password: is set without a username"},
        {"email: {endpoint: smtp://mail:25, from: a@b.c, to: [d@e.f], tls: {min_version: \"1.3\", "
         "max_version: \"1.2\"}}",
         "email::tls"},
        {"email: {endpoint: smtp://mail:25, from: a@b.c, to: [d@e.f], bcc: [x@y.z]}", "bcc"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        fx_t fx;
        fx_init(&fx);
        char e[512];
        int rc = fx_config(&fx, e, sizeof e, "%s", cases[i].yaml);
        if (cases[i].err == NULL) {
            if (rc != 0) {
                fprintf(stderr, "case %zu: %s\n", i, e);
            }
            ASSERT_EQ_INT(rc, 0);
        } else {
            ASSERT_EQ_INT(rc, OM_ECONFIG);
            ASSERT_CONTAINS(e, cases[i].err);
        }
        ASSERT_EQ_INT(fx_finish(&fx), 0);
    }
}

/* ------------------------------------------------------------------------------------------ */
/* Sending                                                                                    */

static void send_one(fx_t *fx, got_t *g, const char *subject)
{
    om_mail_msg_t m = {.subject = subject,
                       .text = "the run failed\nsee the trace",
                       .html = "<p>the run failed</p>"};
    om_err_t err = {0};
    int rc = om_mail_send(fx->client, &m, on_done, g, &err);
    if (rc != 0) {
        fprintf(stderr, "send: %s\n", err.msg);
        g->calls = -1;
        return;
    }
    RUN_UNTIL(fx, g->calls > 0, WAIT_MS);
}

/* One message (subject, and send_one's bodies) sent by a new client with
 * `email: {endpoint: "scheme://127.0.0.1:port", rest}`: its result in g (calls -1 when the
 * client could not be made). Returns 0 when the loop closed clean. */
static int send_with(const char *scheme, int port, const char *rest, const char *subject, got_t *g)
{
    fx_t fx;
    fx_init(&fx);
    if (fx_client(&fx, "email: {endpoint: \"%s://127.0.0.1:%d\", %s}", scheme, port, rest) == 0) {
        send_one(&fx, g, subject);
        if (om_mail_pending(fx.client) != 0) {
            g->calls = -2;
        }
    } else {
        g->calls = -1;
    }
    return fx_finish(&fx);
}

static void test_send_clear_auth(void)
{
    smtpd_t s;
    ASSERT_TRUE(smtpd_start(&s, "--auth", "otelmon:s3cret", NULL));
    got_t g = {0};
    ASSERT_EQ_INT(send_with("smtp", s.port,
                            "starttls: false, username: otelmon, password: s3cret, "
                            "from: otelmon@example.com, to: [ops@example.com, dba@example.org]",
                            "ETL failed: sales/load", &g),
                  0);
    ASSERT_EQ_INT(g.calls, 1);
    ASSERT_EQ_INT(g.error, 0);
    char *msg = smtpd_message(&s, 1);
    ASSERT_TRUE(msg != NULL);
    ASSERT_CONTAINS(msg, "X-Envelope-From: otelmon@example.com\r\n");
    ASSERT_CONTAINS(msg, "X-Envelope-To: ops@example.com,dba@example.org\r\n");
    ASSERT_CONTAINS(msg, "X-Auth-User: otelmon\r\n");
    ASSERT_EQ_STR(subject_of(msg), "ETL failed: sales/load");
    char *text = part_body(msg, "text/plain");
    ASSERT_EQ_STR(text, "the run failed\r\nsee the trace");
    free(text);
    free(msg);
    smtpd_stop(&s);
}

static void test_send_wrong_password(void)
{
    smtpd_t s;
    ASSERT_TRUE(smtpd_start(&s, "--auth", "otelmon:s3cret", NULL));
    got_t g = {0};
    ASSERT_EQ_INT(send_with("smtp", s.port,
                            "starttls: false, username: otelmon, password: wrong, from: a@b.c, "
                            "to: [d@e.f]",
                            "x", &g),
                  0);
    ASSERT_EQ_INT(g.calls, 1);
    ASSERT_EQ_INT(g.error, OM_EIO);
    ASSERT_TRUE(!g.retryable);
    ASSERT_EQ_INT(smtpd_count(&s), 0);
    smtpd_stop(&s);
}

static void test_send_starttls(void)
{
    ASSERT_TRUE(have_certs);
    smtpd_t s;
    ASSERT_TRUE(smtpd_start(&s, "--auth", "u:p", "--cert", certs.server_cert, "--key",
                            certs.server_key, NULL));
    char rest[512];
    snprintf(rest, sizeof rest,
             "username: u, password: p, from: a@b.c, to: [d@e.f], tls: {ca_file: \"%s\"}",
             certs.ca);
    got_t g = {0};
    ASSERT_EQ_INT(send_with("smtp", s.port, rest, "over STARTTLS", &g), 0);
    ASSERT_EQ_INT(g.calls, 1);
    ASSERT_EQ_INT(g.error, 0);
    char *msg = smtpd_message(&s, 1);
    ASSERT_TRUE(msg != NULL);
    ASSERT_CONTAINS(msg, "X-Auth-User: u\r\n");
    free(msg);
    /* A CA that did not sign the server's certificate: nothing is sent. */
    snprintf(rest, sizeof rest,
             "username: u, password: p, from: a@b.c, to: [d@e.f], tls: {ca_file: \"%s\"}",
             certs.other_ca);
    got_t g2 = {0};
    ASSERT_EQ_INT(send_with("smtp", s.port, rest, "x", &g2), 0);
    ASSERT_EQ_INT(g2.calls, 1);
    ASSERT_EQ_INT(g2.error, OM_EIO);
    ASSERT_EQ_INT(smtpd_count(&s), 1);
    smtpd_stop(&s);
}

static void test_send_smtps(void)
{
    ASSERT_TRUE(have_certs);
    smtpd_t s;
    ASSERT_TRUE(smtpd_start(&s, "--implicit-tls", "--cert", certs.server_cert, "--key",
                            certs.server_key, NULL));
    char rest[512];
    snprintf(rest, sizeof rest, "from: a@b.c, to: [d@e.f], tls: {ca_file: \"%s\"}", certs.ca);
    got_t g = {0};
    ASSERT_EQ_INT(send_with("smtps", s.port, rest, "over TLS", &g), 0);
    ASSERT_EQ_INT(g.calls, 1);
    ASSERT_EQ_INT(g.error, 0);
    ASSERT_EQ_INT(smtpd_count(&s), 1);
    smtpd_stop(&s);
}

/* starttls: true (the default) and a server that does not offer it: never sent in clear. */
static void test_starttls_required(void)
{
    smtpd_t s;
    ASSERT_TRUE(smtpd_start(&s, NULL));
    got_t g = {0};
    ASSERT_EQ_INT(send_with("smtp", s.port, "from: a@b.c, to: [d@e.f]", "x", &g), 0);
    ASSERT_EQ_INT(g.calls, 1);
    ASSERT_EQ_INT(g.error, OM_EIO);
    ASSERT_TRUE(!g.retryable);
    ASSERT_EQ_INT(smtpd_count(&s), 0);
    smtpd_stop(&s);
}

static void test_recipient_refusals(void)
{
    static const struct {
        const char *code;
        bool retryable;
    } cases[] = {{"450", true}, {"550", false}};
    for (size_t i = 0; i < 2; i++) {
        smtpd_t s;
        ASSERT_TRUE(smtpd_start(&s, "--rcpt-reply", cases[i].code, NULL));
        got_t g = {0};
        ASSERT_EQ_INT(
            send_with("smtp", s.port, "starttls: false, from: a@b.c, to: [d@e.f]", "x", &g), 0);
        ASSERT_EQ_INT(g.calls, 1);
        ASSERT_EQ_INT(g.error, OM_EIO);
        ASSERT_EQ_INT(g.smtp_code, atoi(cases[i].code));
        ASSERT_EQ_INT(g.retryable, cases[i].retryable);
        smtpd_stop(&s);
    }
}

/* A port nobody listens on: retryable. */
static void test_refused(void)
{
    int sock = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof a;
    ASSERT_EQ_INT(bind(sock, (struct sockaddr *)&a, sizeof a), 0);
    ASSERT_EQ_INT(getsockname(sock, (struct sockaddr *)&a, &len), 0);
    got_t g = {0};
    int closed =
        send_with("smtp", ntohs(a.sin_port), "starttls: false, from: a@b.c, to: [d@e.f]", "x", &g);
    close(sock);
    ASSERT_EQ_INT(closed, 0);
    ASSERT_EQ_INT(g.calls, 1);
    ASSERT_EQ_INT(g.error, OM_EIO);
    ASSERT_TRUE(g.retryable);
}

static void test_close_in_flight(void)
{
    smtpd_t s;
    ASSERT_TRUE(smtpd_start(&s, NULL));
    fx_t fx;
    fx_init(&fx);
    ASSERT_EQ_INT(fx_client(&fx,
                            "email: {endpoint: \"smtp://127.0.0.1:%d\", starttls: false, "
                            "from: a@b.c, to: [d@e.f]}",
                            s.port),
                  0);
    got_t g = {0};
    om_mail_msg_t m = {.subject = "x", .text = "y"};
    om_err_t err = {0};
    ASSERT_EQ_INT(om_mail_send(fx.client, &m, on_done, &g, &err), 0);
    ASSERT_EQ_INT(om_mail_pending(fx.client), 1);
    om_mail_client_close(fx.client, closed_cb, &fx.closed);
    ASSERT_EQ_INT(g.calls, 1);
    ASSERT_EQ_INT(g.error, OM_ESHUTDOWN);
    fx.client = NULL;
    RUN_UNTIL(&fx, fx.closed > 0, WAIT_MS);
    ASSERT_EQ_INT(fx.closed, 1);
    ASSERT_EQ_INT(fx_finish(&fx), 0);
    smtpd_stop(&s);
}

int main(void)
{
    have_certs = om_testcerts_make(&certs);
    OM_RUN(test_format_text_only);
    OM_RUN(test_format_subjects);
    OM_RUN(test_format_multipart);
    OM_RUN(test_validate);
    OM_RUN(test_send_clear_auth);
    OM_RUN(test_send_wrong_password);
    OM_RUN(test_send_starttls);
    OM_RUN(test_send_smtps);
    OM_RUN(test_starttls_required);
    OM_RUN(test_recipient_refusals);
    OM_RUN(test_refused);
    OM_RUN(test_close_in_flight);
    if (have_certs) {
        om_testcerts_remove(&certs);
    }
    return om_test_summary();
}
