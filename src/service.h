/* service.h: running and validating a collector from config files (core-internal). */
#ifndef OM_SERVICE_H
#define OM_SERVICE_H

#include <stdio.h>

#include "om.h"

/* The config used when no --config is given: OTLP gRPC and HTTP on localhost -> batch ->
 * debug. */
extern const char om_default_config[];

/* Load the config sources uris[0..n) (see om_config_load: paths, file:, env:, yaml: URIs),
 * over the built-in default config when defaults is true, validate, build, start and run until
 * SIGINT/SIGTERM, then shut down gracefully. Returns the process exit code. Blocks (it runs
 * the loop). */
int om_service_run(const char *const *uris, size_t n, bool defaults);
/* Load and validate the same way, and build the graph without creating or starting anything.
 * Prints every problem to err_out. Returns the exit code: 0 valid, 1 invalid. */
int om_service_validate(const char *const *uris, size_t n, bool defaults, FILE *err_out);
/* Send gRPC's log lines through om_log (process-wide; call before gRPC is used). */
void om_grpc_route_logs(void);
/* `otelmon healthcheck`: one GET of url (http:// only) within timeout_ms; returns the exit
 * code (0 for a 2xx answer, else 1 with a line on out saying why). Blocks; for the CLI only,
 * before any loop runs. */
int om_healthcheck(const char *url, int64_t timeout_ms, FILE *out);
/* The components of this build, by kind, with their one-line help. */
void om_service_print_components(FILE *out);

#endif
