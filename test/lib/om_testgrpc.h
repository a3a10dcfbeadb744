/* om_testgrpc.h: a gRPC client for tests (gRPC's C core, in a thread of its own), making
 * unary calls to a server that runs on the test's loop: the loop keeps running while the
 * client waits (om_tg_run, or om_tg_begin ... om_tg_end around more loop work). */
#ifndef OM_TESTGRPC_H
#define OM_TESTGRPC_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include <grpc/grpc.h>
#include <uv.h>

typedef struct om_tg_payload {
    uint8_t *data; /* malloc'd */
    size_t len;
} om_tg_payload_t;

typedef struct om_tg_rpc {
    const char *method;
    om_tg_payload_t body;
    bool no_message;               /* send headers only, never half-close: a call that stays open */
    bool precompressed;            /* body is already gzip: sent as is (the job sets gzip) */
    int deadline_s;                /* 0: 10 s */
    const char *md_key, *md_value; /* one metadata entry to send, or NULL */
    grpc_metadata md;
    /* results */
    int status; /* -1 until the call ended */
    char details[256];
    bool got_response;
    size_t response_len;
    bool keep_response; /* set: response gets the reply's bytes (malloc'd; the test frees) */
    uint8_t *response;
    /* client state */
    grpc_call *call;
    grpc_byte_buffer *send, *recv;
    grpc_metadata_array initial_md, trailing_md;
    grpc_slice status_details;
    grpc_status_code code;
} om_tg_rpc_t;

typedef struct om_tg_job {
    char target[64];
    bool gzip;
    bool concurrent; /* start every call at once instead of one after the other */
    om_tg_rpc_t *rpcs;
    size_t n;
    bool hold; /* keep the connection open until `release` is posted */
    uv_sem_t release;
    atomic_bool idle;    /* every call has ended (set before waiting for `release`) */
    atomic_bool started; /* every call has been started */
    atomic_bool done;
    uv_async_t *wake;
    uv_thread_t thread;
} om_tg_job_t;

/* Make the calls of job (one after the other, or all at once with job->concurrent) while
 * running loop, until every call has ended. */
void om_tg_run(uv_loop_t *loop, om_tg_job_t *job);
/* The same in two halves: start the client thread, then run loop until it is done. */
void om_tg_begin(uv_loop_t *loop, om_tg_job_t *job);
void om_tg_end(uv_loop_t *loop, om_tg_job_t *job);

#endif
