/* om_test.h: a minimal test harness. Each test file is one executable (one meson test()).
 *
 *   static void test_something(void) { ASSERT_EQ_INT(1 + 1, 2); }
 *   int main(void) { OM_RUN(test_something); return om_test_summary(); }
 *
 * A failed ASSERT prints file:line and the values, marks the current test failed and returns
 * from the test function. */
#ifndef OM_TEST_H
#define OM_TEST_H

#include <inttypes.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <uv.h>

extern int om_test_failed_now;
extern int om_test_passed, om_test_failed;

#define OM__FAIL(...)                                                                              \
    do {                                                                                           \
        fprintf(stderr, "%s:%d: ", __FILE__, __LINE__);                                            \
        fprintf(stderr, __VA_ARGS__);                                                              \
        fputc('\n', stderr);                                                                       \
        om_test_failed_now = 1;                                                                    \
        return;                                                                                    \
    } while (0)

#define ASSERT_TRUE(c)                                                                             \
    do {                                                                                           \
        if (!(c)) {                                                                                \
            OM__FAIL("assertion failed: %s", #c);                                                  \
        }                                                                                          \
    } while (0)
#define ASSERT_EQ_INT(a, b)                                                                        \
    do {                                                                                           \
        long long om__a = (long long)(a), om__b = (long long)(b);                                  \
        if (om__a != om__b) {                                                                      \
            OM__FAIL("%s == %s: %lld != %lld", #a, #b, om__a, om__b);                              \
        }                                                                                          \
    } while (0)
#define ASSERT_EQ_UINT(a, b)                                                                       \
    do {                                                                                           \
        unsigned long long om__a = (unsigned long long)(a), om__b = (unsigned long long)(b);       \
        if (om__a != om__b) {                                                                      \
            OM__FAIL("%s == %s: %llu != %llu", #a, #b, om__a, om__b);                              \
        }                                                                                          \
    } while (0)
#define ASSERT_EQ_STR(a, b)                                                                        \
    do {                                                                                           \
        const char *om__a = (a), *om__b = (b);                                                     \
        if (om__a == NULL || om__b == NULL || strcmp(om__a, om__b) != 0) {                         \
            OM__FAIL("%s == %s: \"%s\" != \"%s\"", #a, #b, om__a ? om__a : "(null)",               \
                     om__b ? om__b : "(null)");                                                    \
        }                                                                                          \
    } while (0)
#define ASSERT_CONTAINS(hay, needle)                                                               \
    do {                                                                                           \
        const char *om__h = (hay), *om__n = (needle);                                              \
        if (om__h == NULL || strstr(om__h, om__n) == NULL) {                                       \
            OM__FAIL("%s does not contain \"%s\": \"%s\"", #hay, om__n, om__h ? om__h : "(null)"); \
        }                                                                                          \
    } while (0)

#define OM_RUN(fn)                                                                                 \
    do {                                                                                           \
        om_test_failed_now = 0;                                                                    \
        fn();                                                                                      \
        if (om_test_failed_now) {                                                                  \
            om_test_failed++;                                                                      \
            fprintf(stderr, "FAIL %s\n", #fn);                                                     \
        } else {                                                                                   \
            om_test_passed++;                                                                      \
            fprintf(stderr, "ok   %s\n", #fn);                                                     \
        }                                                                                          \
    } while (0)

/* Run loop until cond holds or max_ms of loop time have passed. The loop must keep waking
 * (I/O, or a repeating timer the test keeps) for the deadline to be seen. */
#define OM_TEST_RUN_UNTIL(loop, cond, max_ms)                                                      \
    do {                                                                                           \
        uint64_t om__t0 = uv_now(loop);                                                            \
        while (!(cond) && uv_now(loop) - om__t0 < (uint64_t)(max_ms)) {                            \
            uv_run((loop), UV_RUN_ONCE);                                                           \
        }                                                                                          \
    } while (0)

/* A host for tests: every service of the core a component may use, on loop. Tests make hosts
 * only through these two, so that a new core service reaches every test at once. Close the
 * host after the components are destroyed and before uv_loop_close (it runs the loop until its
 * own handles are closed). Aborts the test program when the host cannot be made. */
struct om_host;
void om_test_host_init(struct om_host *h, uv_loop_t *loop);
void om_test_host_close(struct om_host *h);
/* The value of the metric series name{labels} in h's registry, labels given as key, value
 * pairs ending with NULL: om_test_metric(h, "otelcol_exporter_sent_spans", "exporter",
 * "otlp", NULL). Counters and gauges as integers (real ones truncated), histograms their
 * count; -1 when there is no such series. */
int64_t om_test_metric(const struct om_host *h, const char *name, ...);

/* The first config error of factory f for "c: <yaml>" (yaml as flow text, e.g. "{endpoint:
 * x}"): a field table diagnostic as the user sees it, else "<at>: <message>" of f's
 * config_validate, else "" when the config is valid. A static buffer: valid until the next
 * call. */
struct om_factory;
const char *om_test_config_error(const struct om_factory *f, const char *yaml);

/* Factory f's config from "c: <yaml>" (flow text as above), made as the collector makes it:
 * defaults, the field table (messages prefixed "<kind>s::<type>", e.g.
 * "extensions::basicauth::htpasswd"), config_validate. The caller owns the result and frees
 * it with om_test_config_free (the YAML tree it may point into is freed with it). NULL when
 * the config does not load or validate; *why (when why is not NULL) is then the first
 * problem, as om_test_config_error gives it, and "" otherwise (a static buffer, valid until
 * the next call). */
void *om_test_config_load(const struct om_factory *f, const char *yaml, const char **why);
void om_test_config_free(const struct om_factory *f, void *cfg);

/* The generic lifecycle test every factory gets (STYLE.md §10), called from the component's
 * own tests with the config it needs here, as YAML flow text (e.g. "{endpoint: '127.0.0.1:0'}";
 * NULL or "" for the defaults): the config validates; create then shutdown without start;
 * create, start, one batch of one item per supported signal, shutdown twice (done runs once),
 * destroy; afterwards the loop closes with no handle left. Fails the current test. */
struct om_factory;
void om_test_lifecycle(const struct om_factory *f, const char *cfg_yaml);

/* Prints "N passed, N failed" and returns the exit code for main. */
int om_test_summary(void);

#endif
