/* err.c: error names, messages, and the one mapping from OtelMon codes to what receivers
 * answer over gRPC and HTTP (OTLP spec and otelcol's errors.GetStatusFromError). */
#include <stdio.h>

#include "om.h"

void om_err_set(om_err_t *err, int code, const char *fmt, ...)
{
    if (err == NULL || err->code != 0) {
        return; /* the first, most specific writer wins */
    }
    err->code = code;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err->msg, sizeof err->msg, fmt, ap);
    va_end(ap);
}

void om_err_at(om_err_t *err, const char *key, const char *fmt, ...)
{
    if (err == NULL || err->code != 0) {
        return;
    }
    err->code = OM_ECONFIG;
    snprintf(err->at, sizeof err->at, "%s", key != NULL ? key : "");
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err->msg, sizeof err->msg, fmt, ap);
    va_end(ap);
}

const char *om_strerror(int code)
{
    switch (code) {
    case OM_OK:
        return "success";
#define OM__ERR_MSG(name, c, msg)                                                                  \
    case (c):                                                                                      \
        return (msg);
        OM_ERRNO_MAP(OM__ERR_MSG)
#undef OM__ERR_MSG
    default:
        return "unknown error";
    }
}

const char *om_errname(int code)
{
    switch (code) {
    case OM_OK:
        return "OK";
#define OM__ERR_NAME(name, c, msg)                                                                 \
    case (c):                                                                                      \
        return "OM_" #name;
        OM_ERRNO_MAP(OM__ERR_NAME)
#undef OM__ERR_NAME
    default:
        return "OM_E?";
    }
}

bool om_err_retryable(int code)
{
    return code == OM_EREFUSED || code == OM_EAGAIN || code == OM_ENOMEM || code == OM_ESHUTDOWN ||
           code == OM_EMEMLIMIT;
}

/* gRPC status codes (grpc/status.h), repeated here so the core does not depend on gRPC. */
enum {
    GRPC_OK = 0,
    GRPC_INVALID_ARGUMENT = 3,
    GRPC_NOT_FOUND = 5,
    GRPC_RESOURCE_EXHAUSTED = 8,
    GRPC_UNIMPLEMENTED = 12,
    GRPC_INTERNAL = 13,
    GRPC_UNAVAILABLE = 14,
};

int om_err_grpc_status(int code)
{
    switch (code) {
    case OM_OK:
        return GRPC_OK;
    case OM_EINVAL:
        return GRPC_INVALID_ARGUMENT;
    case OM_ETOOBIG:
        return GRPC_RESOURCE_EXHAUSTED;
    case OM_ENOTSUP:
        return GRPC_UNIMPLEMENTED;
    case OM_ENOTFOUND:
        return GRPC_NOT_FOUND;
    case OM_EREFUSED:
    case OM_EAGAIN:
    case OM_ENOMEM:
    case OM_ESHUTDOWN:
    case OM_EMEMLIMIT:
        /* otelcol answers a refusing pipeline (e.g. memory_limiter) with UNAVAILABLE, which
         * every OTLP exporter retries. */
        return GRPC_UNAVAILABLE;
    default:
        return GRPC_INTERNAL;
    }
}

int om_err_http_status(int code)
{
    switch (code) {
    case OM_OK:
        return 200;
    case OM_EINVAL:
        return 400;
    case OM_ETOOBIG:
        return 413;
    case OM_ENOTSUP:
    case OM_ENOTFOUND:
        return 404;
    case OM_EAGAIN:
        return 429;
    case OM_EREFUSED:
    case OM_ENOMEM:
    case OM_ESHUTDOWN:
    case OM_EMEMLIMIT:
        return 503;
    default:
        return 500;
    }
}
