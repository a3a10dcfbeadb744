/* grpc_log.c: gRPC's own log lines go through om_log, with our timestamp and level format,
 * instead of gRPC's "E1124 07:01:02..." lines on stderr. gRPC logs from its own threads;
 * om_log_write only formats and writes one line, which is safe from any thread. */
#include <grpc/support/log.h>

#include "om.h"
#include "service.h"

static void forward(gpr_log_func_args *args)
{
    om_log_level_t lvl = args->severity == GPR_LOG_SEVERITY_ERROR  ? OM_LOG_ERROR
                         : args->severity == GPR_LOG_SEVERITY_INFO ? OM_LOG_INFO
                                                                   : OM_LOG_DEBUG;
    /* gRPC errors about a peer (a reset stream, a failed handshake) are not the operator's to
     * act on: warn. */
    if (lvl == OM_LOG_ERROR) {
        lvl = OM_LOG_WARN;
    }
    OM_CLOG("grpc", lvl, "%s", args->message);
}

void om_grpc_route_logs(void)
{
    gpr_set_log_function(forward);
}
