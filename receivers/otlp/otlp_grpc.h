/* otlp_grpc.h: what the OTLP/gRPC server shows beyond otlp.h, for tests. */
#ifndef RCV_OTLP_GRPC_H
#define RCV_OTLP_GRPC_H

#include <stdint.h>

#include "otlp.h"

/* The port the server listens on once start succeeded (the one the kernel picked when the
 * endpoint says port 0); 0 before that or after a failed start. Loop thread; never blocks. */
int otlp_grpc_bound_port(const otlp_grpc_server_t *s);

/* How long shutdown lets open calls finish before cancelling them (default 5000 ms). Call
 * before otlp_grpc_shutdown(); loop thread. */
void otlp_grpc_set_shutdown_grace(otlp_grpc_server_t *s, uint64_t ms);

#endif
