/* health_check.h: what the health_check extension shows its own tests. The extension itself is
 * reached only through ext_health_check_factory; nothing else in the tree includes this file.
 * Every function here is for the loop thread and never blocks. */
#ifndef EXT_HEALTH_CHECK_H
#define EXT_HEALTH_CHECK_H

#include "om.h"

extern const om_factory_t ext_health_check_factory;

/* The port the listener is bound to (useful with port 0), or -1 while not listening. */
int ext_health_check_bound_port(const void *self);
/* Connections that are open, closing ones included. */
size_t ext_health_check_conn_count(const void *self);

/* Go's time.Duration.String() of a non-negative duration: "0s", "1.5µs", "2.000001ms",
 * "1m2.5s", "1h0m0s". Writes a NUL-terminated string of at most n-1 bytes to out. */
void ext_health_check_go_duration(uint64_t ns, char *out, size_t n);
/* Go's time.Time JSON form (RFC 3339 with nanoseconds, trailing zeros dropped) of a wall-clock
 * time in the local time zone: "2024-05-01T10:20:30.123456789Z", "...+02:00". */
void ext_health_check_rfc3339(int64_t sec, long nsec, char *out, size_t n);

#endif
