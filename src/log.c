/* log.c: leveled log lines on stderr: "2026-11-24T06:40:01.123Z\tinfo\t[receiver/otlp]\tmsg". */
#include <stdio.h>
#include <time.h>

#include "om.h"

om_log_level_t om__log_level = OM_LOG_INFO;

void om_log_set_level(om_log_level_t lvl)
{
    om__log_level = lvl;
}

static const char *level_name(om_log_level_t lvl)
{
    static const char *const names[] = {"debug", "info", "warn", "error"};
    return lvl <= OM_LOG_ERROR ? names[lvl] : "?";
}

void om_log_write(om_log_level_t lvl, const char *who, const char *fmt, ...)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    struct tm tm;
    gmtime_r(&ts.tv_sec, &tm);
    char line[2048];
    int n = snprintf(line, sizeof line, "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ\t%s\t",
                     tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                     ts.tv_nsec / 1000000, level_name(lvl));
    if (who != NULL && n >= 0 && (size_t)n < sizeof line) {
        n += snprintf(line + n, sizeof line - (size_t)n, "[%s]\t", who);
    }
    if (n >= 0 && (size_t)n < sizeof line) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(line + n, sizeof line - (size_t)n, fmt, ap);
        va_end(ap);
    }
    /* One fputs per line so that lines from different components never interleave. */
    fprintf(stderr, "%s\n", line);
}
