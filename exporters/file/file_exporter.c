/* file_exporter.c: the file exporter, as otelcol-contrib's `file` exporter writes its file.
 *
 * - format json: each batch is one line of OTLP JSON (om_otlp_json_encode) and '\n';
 *   format proto: each batch is its 4-byte big-endian length, then the protobuf message.
 * - append false (the default) truncates the file at start; true appends. The file is created
 *   with mode 0644. A missing directory is an error at start: it is not created.
 * - One instance per ID serves every signal, all into the same file, as otelcol shares one.
 *
 * Writes never block the loop: consume encodes the batch into a bounded in-memory queue and
 * returns; the queue is written with uv_fs_write, one write in flight at a time, each write a
 * run of whole records, so a reader of the file only ever sees a prefix of complete records
 * (plus the tail of the record being written). OK from consume means "accepted into the
 * queue". When the queue holds the limit (64 MiB) consume refuses with OM_EREFUSED
 * (retryable); a batch is always accepted into an empty queue, whatever its size, so that a
 * large batch cannot be refused forever. A failed write loses the records it carried: it is
 * logged at warn (at most once a second) with the count.
 *
 * Opening the file at start is the one synchronous file call: start must report a bad path
 * before the graph is swapped in, and it runs once per (re)load, not per batch.
 *
 * flush_interval is accepted for compatibility and has no effect: nothing is buffered in user
 * space beyond the queue, every record is handed to the kernel as soon as it can be.
 * rotation, group_by, compression, encoding, create_directory and directory_permissions are
 * accepted and ignored (the core logs a warning when they are set). */
#include <fcntl.h>
#include <string.h>

#include "file.h"

#define DEFAULT_QUEUE_LIMIT ((size_t)64 << 20)
#define MAX_IOVS 64
#define MAX_IOV_LEN ((size_t)1 << 30)

/* One encoded record waiting to be written. */
typedef struct record {
    struct record *next;
    char *data; /* om_malloc'd */
    size_t len;
    size_t off; /* bytes already written */
} record_t;

typedef struct exp_file {
    const exp_file_cfg_t *cfg;
    const char *log_name;
    om_host_t *host;
    uv_file fd;
    bool opened, writing, closing, shutting_down;

    record_t *head, *tail; /* the queue, oldest first; the first n_inflight are being written */
    size_t n_inflight;
    size_t queued_bytes; /* unwritten bytes of every queued record */
    size_t queue_limit;
    uv_fs_t write_req, close_req;
    uv_buf_t iov[MAX_IOVS];

    om_strbuf_t enc; /* reused for JSON encoding */
    om_done_fn done;
    void *done_arg;
    uint64_t last_warn_ms;
    size_t warns_suppressed;
} exp_file_t;

static const char *const format_choices[] = {"json", "proto", NULL};

static const om_field_t file_fields[] = {
    {.key = "path",
     .type = OM_F_STRING,
     .offset = offsetof(exp_file_cfg_t, path),
     .flags = OM_FF_REQUIRED,
     .help = "the file to write to"},
    {.key = "format",
     .type = OM_F_ENUM,
     .offset = offsetof(exp_file_cfg_t, format),
     .def = "json",
     .choices = format_choices,
     .help = "json: one OTLP JSON line per batch; proto: length-prefixed OTLP protobuf"},
    {.key = "append",
     .type = OM_F_BOOL,
     .offset = offsetof(exp_file_cfg_t, append),
     .def = "false",
     .help = "append to the file instead of truncating it at start"},
    {.key = "flush_interval",
     .type = OM_F_DURATION,
     .offset = offsetof(exp_file_cfg_t, flush_interval),
     .def = "1s",
     .help = "accepted; records are written as soon as possible"},
    {.key = "rotation", .type = OM_F_IGNORED},
    {.key = "group_by", .type = OM_F_IGNORED},
    {.key = "compression", .type = OM_F_IGNORED},
    {.key = "encoding", .type = OM_F_IGNORED},
    {.key = "create_directory", .type = OM_F_IGNORED},
    {.key = "directory_permissions", .type = OM_F_IGNORED},
    {.key = "sending_queue", .type = OM_F_IGNORED},
    {.key = "retry_on_failure", .type = OM_F_IGNORED},
    {.key = "timeout", .type = OM_F_IGNORED},
    {.key = NULL},
};

static int file_config_validate(const void *vcfg, om_err_t *err)
{
    const exp_file_cfg_t *cfg = vcfg;
    if (cfg->path == NULL || cfg->path[0] == '\0') {
        om_err_at(err, "path", "must be non-empty");
        return OM_ECONFIG;
    }
    if (cfg->flush_interval < 0) {
        om_err_at(err, "flush_interval", "must be larger than zero");
        return OM_ECONFIG;
    }
    return 0;
}

void exp_file_set_queue_limit(void *self, size_t bytes)
{
    ((exp_file_t *)self)->queue_limit = bytes;
}

/* ---- writing ----------------------------------------------------------------------------- */

static void maybe_close(exp_file_t *f);
static void on_write(uv_fs_t *req);

static void warn_write_failed(exp_file_t *f, ssize_t rc, size_t records)
{
    uint64_t now = uv_now(f->host->loop);
    if (f->last_warn_ms != 0 && now - f->last_warn_ms < 1000) {
        f->warns_suppressed++;
        return;
    }
    OM_CLOG(f->log_name, OM_LOG_WARN,
            "write to %s failed: %s; dropped %zu batches (%zu similar warnings suppressed)",
            f->cfg->path, uv_strerror((int)rc), records, f->warns_suppressed);
    f->last_warn_ms = now != 0 ? now : 1;
    f->warns_suppressed = 0;
}

static void pop_record(exp_file_t *f)
{
    record_t *r = f->head;
    f->head = r->next;
    if (f->head == NULL) {
        f->tail = NULL;
    }
    om_free(r->data);
    om_free(r);
}

/* Starts a write of the records at the head of the queue, if none is in flight. */
static void start_write(exp_file_t *f)
{
    if (f->writing || f->head == NULL || !f->opened || f->closing) {
        return;
    }
    size_t n = 0;
    for (record_t *r = f->head; r != NULL && n < MAX_IOVS; r = r->next) {
        /* uv_buf_t lengths are 32-bit: a larger record goes out in several writes. */
        size_t left = r->len - r->off;
        f->iov[n++] =
            uv_buf_init(r->data + r->off, (unsigned)(left < MAX_IOV_LEN ? left : MAX_IOV_LEN));
    }
    int rc = uv_fs_write(f->host->loop, &f->write_req, f->fd, f->iov, (unsigned)n, -1, on_write);
    if (rc != 0) {
        /* Not started: the callback will not run. Drop what we tried to write. */
        warn_write_failed(f, rc, n);
        for (size_t i = 0; i < n; i++) {
            f->queued_bytes -= f->head->len - f->head->off;
            pop_record(f);
        }
        return;
    }
    f->writing = true;
    f->n_inflight = n;
}

/* Accounts for `written` bytes from the head of the queue: whole records are freed, a record
 * written in part keeps its offset for the next write. */
static void consume_written(exp_file_t *f, size_t written)
{
    while (written > 0 && f->head != NULL) {
        record_t *r = f->head;
        size_t left = r->len - r->off;
        size_t k = written < left ? written : left;
        r->off += k;
        written -= k;
        f->queued_bytes -= k;
        if (r->off == r->len) {
            pop_record(f);
        }
    }
}

static void on_write(uv_fs_t *req)
{
    exp_file_t *f = req->data;
    ssize_t result = req->result;
    uv_fs_req_cleanup(req);
    f->writing = false;
    if (result < 0) {
        warn_write_failed(f, result, f->n_inflight);
        for (size_t i = 0; i < f->n_inflight && f->head != NULL; i++) {
            f->queued_bytes -= f->head->len - f->head->off;
            pop_record(f);
        }
    } else {
        consume_written(f, (size_t)result);
    }
    f->n_inflight = 0;
    start_write(f);
    maybe_close(f);
}

/* ---- consume ----------------------------------------------------------------------------- */

/* The batch as one record: a JSON line, or a length-prefixed protobuf message. */
static int encode(exp_file_t *f, om_batch_t *b, char **data, size_t *len)
{
    if (f->cfg->format == EXP_FILE_PROTO) {
        size_t n = om_batch_proto_size(b);
        if (n > UINT32_MAX) {
            return OM_ETOOBIG;
        }
        uint8_t *buf = om_malloc(n + 4);
        if (buf == NULL) {
            return OM_ENOMEM;
        }
        buf[0] = (uint8_t)(n >> 24);
        buf[1] = (uint8_t)(n >> 16);
        buf[2] = (uint8_t)(n >> 8);
        buf[3] = (uint8_t)n;
        om_batch_proto_pack(b, buf + 4);
        *data = (char *)buf;
        *len = n + 4;
        return 0;
    }
    int rc = om_batch_decode(b, NULL);
    if (rc != 0) {
        return rc;
    }
    om_strbuf_reset(&f->enc);
    rc = om_otlp_json_encode(b, &f->enc);
    om_strbuf_putc(&f->enc, '\n');
    if (rc == 0 && f->enc.failed) {
        rc = OM_ENOMEM;
    }
    if (rc != 0) {
        return rc;
    }
    /* The buffer becomes the record; the next encode starts a new one. */
    *data = om_strbuf_steal(&f->enc, len);
    return 0;
}

static int file_consume(void *self, om_batch_t *b)
{
    exp_file_t *f = self;
    int rc = 0;
    char *data = NULL;
    size_t len = 0;
    if (f->shutting_down) {
        rc = OM_ESHUTDOWN;
        goto out;
    }
    if (!f->opened) {
        rc = OM_EIO;
        goto out;
    }
    if (f->head != NULL && f->queued_bytes >= f->queue_limit) {
        rc = OM_EREFUSED;
        goto out;
    }
    rc = encode(f, b, &data, &len);
    if (rc != 0) {
        goto out;
    }
    if (f->head != NULL && f->queued_bytes + len > f->queue_limit) {
        om_free(data);
        rc = OM_EREFUSED;
        goto out;
    }
    record_t *r = om_malloc(sizeof *r);
    if (r == NULL) {
        om_free(data);
        rc = OM_ENOMEM;
        goto out;
    }
    *r = (record_t){.data = data, .len = len};
    if (f->tail != NULL) {
        f->tail->next = r;
    } else {
        f->head = r;
    }
    f->tail = r;
    f->queued_bytes += len;
    start_write(f);
out:
    om_batch_release(b);
    return rc;
}

/* ---- lifecycle --------------------------------------------------------------------------- */

static int file_create(const om_create_args_t *a, void **self, om_err_t *err)
{
    exp_file_t *f = om_calloc(1, sizeof *f);
    if (f == NULL) {
        om_err_set(err, OM_ENOMEM, "out of memory");
        return OM_ENOMEM;
    }
    f->cfg = a->cfg;
    f->log_name = a->log_name;
    f->host = a->host;
    f->fd = -1;
    f->queue_limit = DEFAULT_QUEUE_LIMIT;
    f->write_req.data = f;
    f->close_req.data = f;
    om_strbuf_init(&f->enc, 0);
    *self = f;
    return 0;
}

/* The directory part of path, for the error message ("." when there is none). */
static void dir_of(const char *path, char *out, size_t cap)
{
    const char *slash = strrchr(path, '/');
    if (slash == NULL) {
        snprintf(out, cap, ".");
        return;
    }
    size_t n = slash == path ? 1 : (size_t)(slash - path);
    snprintf(out, cap, "%.*s", (int)n, path);
}

static int file_start(void *self, om_err_t *err)
{
    exp_file_t *f = self;
    int flags = O_WRONLY | O_CREAT | O_CLOEXEC | (f->cfg->append ? O_APPEND : O_TRUNC);
    uv_fs_t req;
    /* No callback: synchronous, see the top of the file for why. */
    int rc = uv_fs_open(f->host->loop, &req, f->cfg->path, flags, 0644, NULL);
    uv_fs_req_cleanup(&req);
    if (rc < 0) {
        char dir[256];
        dir_of(f->cfg->path, dir, sizeof dir);
        if (rc == UV_ENOENT) {
            om_err_set(err, OM_EIO, "cannot open %s: the directory %s does not exist", f->cfg->path,
                       dir);
        } else {
            om_err_set(err, OM_EIO, "cannot open %s: %s", f->cfg->path, uv_strerror(rc));
        }
        return OM_EIO;
    }
    f->fd = rc;
    f->opened = true;
    return 0;
}

static void on_close(uv_fs_t *req)
{
    exp_file_t *f = req->data;
    if (req->result < 0) {
        OM_CLOG(f->log_name, OM_LOG_WARN, "closing %s failed: %s", f->cfg->path,
                uv_strerror((int)req->result));
    }
    uv_fs_req_cleanup(req);
    f->opened = false;
    f->done(f->done_arg);
}

/* Once shutting down and the queue is written, closes the file; done runs from the close. */
static void maybe_close(exp_file_t *f)
{
    if (!f->shutting_down || f->closing || f->writing || f->head != NULL) {
        return;
    }
    f->closing = true;
    if (!f->opened) {
        f->done(f->done_arg);
        return;
    }
    int rc = uv_fs_close(f->host->loop, &f->close_req, f->fd, on_close);
    if (rc != 0) {
        f->opened = false;
        f->done(f->done_arg);
    }
}

static void file_shutdown(void *self, om_done_fn done, void *arg)
{
    exp_file_t *f = self;
    if (f->shutting_down) {
        return;
    }
    f->shutting_down = true;
    f->done = done;
    f->done_arg = arg;
    maybe_close(f);
}

static void file_destroy(void *self)
{
    exp_file_t *f = self;
    while (f->head != NULL) {
        pop_record(f);
    }
    om_strbuf_free(&f->enc);
    om_free(f);
}

const om_factory_t exp_file_factory = {
    .abi = OM_FACTORY_ABI,
    .kind = OM_EXPORTER,
    .type = "file",
    .help = "writes every batch to a file as a line of OTLP JSON (or length-prefixed protobuf)",
    .signals = OM_SIG_ALL,
    .caps = 0,
    .config_size = sizeof(exp_file_cfg_t),
    .fields = file_fields,
    .config_validate = file_config_validate,
    .create = file_create,
    .start = file_start,
    .shutdown = file_shutdown,
    .destroy = file_destroy,
    .consume_traces = file_consume,
    .consume_metrics = file_consume,
    .consume_logs = file_consume,
};
