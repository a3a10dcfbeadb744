/* om_testgrpc.c: see om_testgrpc.h. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <grpc/byte_buffer.h>
#include <grpc/byte_buffer_reader.h>
#include <grpc/compression.h>
#include <grpc/grpc_security.h>
#include <grpc/slice.h>

#include "om_testgrpc.h"

static gpr_timespec in_seconds(int s)
{
    return gpr_time_add(gpr_now(GPR_CLOCK_REALTIME), gpr_time_from_seconds(s, GPR_TIMESPAN));
}

static void rpc_start(om_tg_rpc_t *c, grpc_channel *ch, grpc_completion_queue *cq)
{
    c->status = -1;
    grpc_metadata_array_init(&c->initial_md);
    grpc_metadata_array_init(&c->trailing_md);
    c->call = grpc_channel_create_call(ch, NULL, GRPC_PROPAGATE_DEFAULTS, cq,
                                       grpc_slice_from_static_string(c->method), NULL,
                                       in_seconds(c->deadline_s > 0 ? c->deadline_s : 10), NULL);
    grpc_op ops[6];
    memset(ops, 0, sizeof ops);
    size_t n = 0;
    if (c->md_key != NULL) {
        c->md.key = grpc_slice_from_static_string(c->md_key);
        c->md.value = grpc_slice_from_static_string(c->md_value);
        ops[n].data.send_initial_metadata.count = 1;
        ops[n].data.send_initial_metadata.metadata = &c->md;
    }
    ops[n++].op = GRPC_OP_SEND_INITIAL_METADATA;
    if (!c->no_message) {
        grpc_slice s = grpc_slice_from_copied_buffer((const char *)c->body.data, c->body.len);
        c->send = c->precompressed
                      ? grpc_raw_compressed_byte_buffer_create(&s, 1, GRPC_COMPRESS_GZIP)
                      : grpc_raw_byte_buffer_create(&s, 1);
        grpc_slice_unref(s);
        ops[n].op = GRPC_OP_SEND_MESSAGE;
        ops[n++].data.send_message.send_message = c->send;
        ops[n++].op = GRPC_OP_SEND_CLOSE_FROM_CLIENT;
        ops[n].op = GRPC_OP_RECV_INITIAL_METADATA;
        ops[n++].data.recv_initial_metadata.recv_initial_metadata = &c->initial_md;
        ops[n].op = GRPC_OP_RECV_MESSAGE;
        ops[n++].data.recv_message.recv_message = &c->recv;
    }
    ops[n].op = GRPC_OP_RECV_STATUS_ON_CLIENT;
    ops[n].data.recv_status_on_client.trailing_metadata = &c->trailing_md;
    ops[n].data.recv_status_on_client.status = &c->code;
    ops[n++].data.recv_status_on_client.status_details = &c->status_details;
    grpc_call_error ce = grpc_call_start_batch(c->call, ops, n, c, NULL);
    if (ce != GRPC_CALL_OK) {
        fprintf(stderr, "client: start_batch: %s\n", grpc_call_error_to_string(ce));
    }
}

static void rpc_finish(om_tg_rpc_t *c)
{
    c->status = (int)c->code;
    size_t len = GRPC_SLICE_LENGTH(c->status_details);
    if (len >= sizeof c->details) {
        len = sizeof c->details - 1;
    }
    memcpy(c->details, GRPC_SLICE_START_PTR(c->status_details), len);
    c->details[len] = '\0';
    if (c->recv != NULL) {
        c->got_response = true;
        c->response_len = grpc_byte_buffer_length(c->recv);
        if (c->keep_response) {
            c->response = malloc(c->response_len + 1);
            grpc_byte_buffer_reader rd;
            grpc_slice sl;
            size_t at = 0;
            if (c->response != NULL && grpc_byte_buffer_reader_init(&rd, c->recv)) {
                while (grpc_byte_buffer_reader_next(&rd, &sl)) {
                    memcpy(c->response + at, GRPC_SLICE_START_PTR(sl), GRPC_SLICE_LENGTH(sl));
                    at += GRPC_SLICE_LENGTH(sl);
                    grpc_slice_unref(sl);
                }
                grpc_byte_buffer_reader_destroy(&rd);
            }
        }
        grpc_byte_buffer_destroy(c->recv);
    }
    if (c->send != NULL) {
        grpc_byte_buffer_destroy(c->send);
    }
    grpc_slice_unref(c->status_details);
    grpc_metadata_array_destroy(&c->initial_md);
    grpc_metadata_array_destroy(&c->trailing_md);
    grpc_call_unref(c->call);
}

/* Waits for one call to end; false when the queue timed out (the call is then cancelled). */
static bool wait_one(grpc_completion_queue *cq)
{
    grpc_event ev = grpc_completion_queue_next(cq, in_seconds(12), NULL);
    if (ev.type != GRPC_OP_COMPLETE) {
        fprintf(stderr, "client: completion queue returned %d\n", (int)ev.type);
        return false;
    }
    rpc_finish(ev.tag);
    return true;
}

static void client_main(void *arg)
{
    om_tg_job_t *job = arg;
    grpc_arg a = {.type = GRPC_ARG_INTEGER,
                  .key = GRPC_COMPRESSION_CHANNEL_DEFAULT_ALGORITHM,
                  .value.integer = GRPC_COMPRESS_GZIP};
    grpc_channel_args args = {.num_args = job->gzip ? 1 : 0, .args = &a};
    grpc_channel_credentials *creds = grpc_insecure_credentials_create();
    grpc_channel *ch = grpc_channel_create(job->target, creds, &args);
    grpc_channel_credentials_release(creds);
    grpc_completion_queue *cq = grpc_completion_queue_create_for_next(NULL);
    /* One after the other, except that a call that stays open does not hold up the next. */
    size_t finished = 0;
    for (size_t i = 0; i < job->n; i++) {
        rpc_start(&job->rpcs[i], ch, cq);
        if (!job->concurrent && !job->rpcs[i].no_message) {
            finished += wait_one(cq);
        }
    }
    atomic_store(&job->started, true);
    uv_async_send(job->wake);
    while (finished < job->n && wait_one(cq)) {
        finished++;
    }
    if (job->hold) {
        atomic_store(&job->idle, true);
        uv_async_send(job->wake);
        uv_sem_wait(&job->release);
    }
    grpc_completion_queue_shutdown(cq);
    while (grpc_completion_queue_next(cq, gpr_inf_future(GPR_CLOCK_REALTIME), NULL).type !=
           GRPC_QUEUE_SHUTDOWN) {
    }
    grpc_completion_queue_destroy(cq);
    grpc_channel_destroy(ch);
    atomic_store(&job->done, true);
    uv_async_send(job->wake);
}

static void wake_cb(uv_async_t *h)
{
    (void)h;
}

void om_tg_begin(uv_loop_t *loop, om_tg_job_t *job)
{
    job->wake = malloc(sizeof *job->wake);
    uv_async_init(loop, job->wake, wake_cb);
    uv_thread_create(&job->thread, client_main, job);
}

static void free_handle(uv_handle_t *h)
{
    free(h);
}

void om_tg_end(uv_loop_t *loop, om_tg_job_t *job)
{
    while (!atomic_load(&job->done)) {
        uv_run(loop, UV_RUN_ONCE);
    }
    uv_thread_join(&job->thread);
    uv_close((uv_handle_t *)job->wake, free_handle);
    uv_run(loop, UV_RUN_NOWAIT);
}

void om_tg_run(uv_loop_t *loop, om_tg_job_t *job)
{
    om_tg_begin(loop, job);
    om_tg_end(loop, job);
}
