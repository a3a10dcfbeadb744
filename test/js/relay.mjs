// relay.mjs: helpers of the exporter tests (test/integration/exporters.test.mjs, tls.test.mjs).
//
// A chain is two collectors: A (otlp receiver -> [batch] -> an exporter under test) and B
// (otlp receiver -> file). Between them a test may put a stand-in backend written here, on
// public APIs only:
//   - startGrpcBackend: a gRPC server made with @grpc/grpc-js that serves the three OTLP Export
//     methods with raw Buffer (de)serializers, records every call (path, metadata, deadline,
//     request bytes) and answers as the test decides: success, a status, a delay, or forward the
//     request to a real collector (B);
//   - startHttpBackend: the same for OTLP/HTTP with node:http (status, Retry-After, stall,
//     forward to B);
//   - startRawH2Backend: a bare node:http2 server that sees the gRPC wire as it is (the
//     grpc-encoding and grpc-timeout headers, the compressed flag of the message frame), which
//     @grpc/grpc-js consumes before an application sees them.
// The OTLP request bytes are read with a small protobuf walker (spanIdsOfRequest & co), so that
// a backend can tell which spans, points and records each request holds.

import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import http from 'node:http';
import http2 from 'node:http2';
import { gunzipSync, inflateSync } from 'node:zlib';

import { flattenSpans, readFileOutput, requireJs, sleep, TIME_SCALE } from './harness.mjs';
import { tracesProto } from './otlp_build.mjs';

const grpc = requireJs('@grpc/grpc-js');

/** The gRPC method of each signal's Export call, as in opentelemetry-proto. */
export const EXPORT_PATH = {
    traces: '/opentelemetry.proto.collector.trace.v1.TraceService/Export',
    metrics: '/opentelemetry.proto.collector.metrics.v1.MetricsService/Export',
    logs: '/opentelemetry.proto.collector.logs.v1.LogsService/Export',
};

/** The OTLP/HTTP path of each signal. */
export const HTTP_PATH = { traces: '/v1/traces', metrics: '/v1/metrics', logs: '/v1/logs' };

const SIGNALS = ['traces', 'metrics', 'logs'];

// ---------------------------------------------------------------------------------------------
// Configs

/** The `receivers:` section of a collector listening on o.grpcPort/o.httpPort (opts.grpcTls,
 * opts.httpTls: objects written as the protocols' `tls` sections). */
export function receiversYaml(o, opts = {}) {
    const tls = (t) => (t ? `        tls: ${JSON.stringify(t)}\n` : '');
    return 'receivers:\n' +
        '  otlp:\n' +
        '    protocols:\n' +
        '      grpc:\n' +
        `        endpoint: 127.0.0.1:${o.grpcPort}\n` + tls(opts.grpcTls) +
        '      http:\n' +
        `        endpoint: 127.0.0.1:${o.httpPort}\n` + tls(opts.httpTls);
}

function pipelinesYaml(processors, exporter) {
    const p = '      receivers: [otlp]\n' +
        (processors.length > 0 ? `      processors: [${processors.join(', ')}]\n` : '') +
        `      exporters: [${exporter}]\n`;
    return 'service:\n  pipelines:\n' + SIGNALS.map((s) => `    ${s}:\n${p}`).join('');
}

/**
 * A config (for startCollector's `yaml` option) of collector A: otlp receiver -> batch (unless
 * batch is false) -> the exporter `name` (e.g. 'otlp', 'otlphttp') with the settings `cfg`
 * (a plain object, written as a YAML flow mapping; YAML is a superset of JSON).
 */
export function relayYaml(name, cfg, { batch = '50ms', receivers = {} } = {}) {
    return (o) => receiversYaml(o, receivers) +
        (batch ? `processors:\n  batch:\n    timeout: ${batch}\n` : '') +
        `exporters:\n  ${name}: ${JSON.stringify(cfg)}\n` +
        pipelinesYaml(batch ? ['batch'] : [], name);
}

/** A config of collector B: otlp receiver -> file (o.outPath), optionally with receiver TLS. */
export function sinkYaml(receivers = {}) {
    return (o) => receiversYaml(o, receivers) +
        `exporters:\n  file:\n    path: ${JSON.stringify(o.outPath)}\n` +
        pipelinesYaml([], 'file');
}

/** The file output of a collector that may be writing right now: a half-written last line
 * reads as "nothing new yet" rather than as an error. */
export function outputNow(c) {
    try {
        return readFileOutput(c.outPath);
    } catch (e) {
        if (/not terminated by a newline|not JSON/.test(e.message)) {
            return null;
        }
        throw e;
    }
}

/** Resident set size of a process in KiB, from /proc/PID/status (null once it is gone). */
export function rssKb(pid) {
    try {
        const m = /^VmRSS:\s+(\d+)\s+kB/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
        return m ? Number(m[1]) : null;
    } catch {
        return null;
    }
}

// ---------------------------------------------------------------------------------------------
// A minimal protobuf reader, enough to list the items of an OTLP Export*ServiceRequest.

/** The fields of one protobuf message: [{field, wt, value}] (value: BigInt for varint and
 * fixed, Buffer for length-delimited). Throws on malformed input. */
export function pbFields(buf) {
    const out = [];
    let i = 0;
    const varint = () => {
        let v = 0n;
        let shift = 0n;
        for (;;) {
            if (i >= buf.length) {
                throw new Error('truncated varint');
            }
            const b = buf[i++];
            v |= BigInt(b & 0x7f) << shift;
            if ((b & 0x80) === 0) {
                return v;
            }
            shift += 7n;
        }
    };
    while (i < buf.length) {
        const key = Number(varint());
        const field = key >> 3;
        const wt = key & 7;
        let value;
        if (wt === 0) {
            value = varint();
        } else if (wt === 1 || wt === 5) {
            const n = wt === 1 ? 8 : 4;
            if (i + n > buf.length) {
                throw new Error('truncated fixed field');
            }
            value = wt === 1 ? buf.readBigUInt64LE(i) : BigInt(buf.readUInt32LE(i));
            i += n;
        } else if (wt === 2) {
            const len = Number(varint());
            if (i + len > buf.length) {
                throw new Error('truncated length-delimited field');
            }
            value = buf.subarray(i, i + len);
            i += len;
        } else {
            throw new Error(`unsupported wire type ${wt}`);
        }
        out.push({ field, wt, value });
    }
    return out;
}

const sub = (buf, field) => pbFields(buf).filter((f) => f.field === field && f.wt === 2).map((f) => f.value);

/** Span ids (hex) of an ExportTraceServiceRequest in protobuf, in order. */
export function spanIdsOfRequest(buf) {
    const ids = [];
    for (const rs of sub(buf, 1)) {
        for (const ss of sub(rs, 2)) {
            for (const span of sub(ss, 2)) {
                ids.push(sub(span, 2)[0]?.toString('hex') ?? '');
            }
        }
    }
    return ids;
}

/** Span names of an ExportTraceServiceRequest in protobuf, in order. */
export function spanNamesOfRequest(buf) {
    const names = [];
    for (const rs of sub(buf, 1)) {
        for (const ss of sub(rs, 2)) {
            for (const span of sub(ss, 2)) {
                names.push(sub(span, 5)[0]?.toString('utf8') ?? '');
            }
        }
    }
    return names;
}

/** Span names of an OTLP/HTTP request body as sent (protobuf or JSON, maybe compressed). */
export function spanNamesOfHttpBody(headers, body) {
    const enc = headers['content-encoding'];
    const raw = enc === 'gzip' ? gunzipSync(body) : enc === 'deflate' ? inflateSync(body) : body;
    if ((headers['content-type'] ?? '').startsWith('application/json')) {
        const req = JSON.parse(raw.toString('utf8'));
        return (req.resourceSpans ?? []).flatMap((rs) => (rs.scopeSpans ?? []).flatMap(
            (ss) => (ss.spans ?? []).map((s) => s.name)));
    }
    return spanNamesOfRequest(raw);
}

// ---------------------------------------------------------------------------------------------
// Stand-in backends

/** A deferred: a promise with its resolve function, for a backend to wait on ("stall"). */
export function gate() {
    let open;
    const promise = new Promise((resolve) => { open = resolve; });
    return { promise, open };
}

function rawMethod(path) {
    return {
        path, requestStream: false, responseStream: false,
        requestSerialize: (b) => b, requestDeserialize: (b) => b,
        responseSerialize: (b) => b, responseDeserialize: (b) => b,
    };
}

/**
 * A gRPC server (@grpc/grpc-js) serving the three OTLP Export methods on 127.0.0.1:port (0:
 * any free port). Every call is recorded in `calls` as {signal, path, metadata (plain object of
 * the call's metadata), deadline (ms since the epoch, or Infinity), body (the decompressed
 * request bytes), t (arrival time)}; then `decide(call)` (may be async) says what to answer:
 *   undefined or {ok: true}: success with an empty response;
 *   {forward: 'host:port'}: the same request to that OTLP/gRPC server, its answer relayed;
 *   {code, details, trailers}: that status, with the trailing metadata (Buffer values for
 *   -bin keys).
 * opts.credentials: grpc.ServerCredentials (default insecure).
 */
export async function startGrpcBackend({ port = 0, decide = () => undefined, credentials } = {}) {
    const server = new grpc.Server();
    const calls = [];
    const clients = new Map();
    const forward = (target, path, body, deadline) => new Promise((resolve) => {
        if (!clients.has(target)) {
            clients.set(target, new grpc.Client(target, grpc.credentials.createInsecure()));
        }
        clients.get(target).makeUnaryRequest(path, (b) => b, (b) => b, body, new grpc.Metadata(),
                                             { deadline: Number.isFinite(deadline) ? deadline : Date.now() + 30000 },
                                             (err, res) => resolve(err ? { err } : { res }));
    });
    const handler = (signal) => (call, callback) => {
        const d = call.getDeadline();
        const rec = {
            signal, path: call.getPath(), metadata: call.metadata.getMap(),
            deadline: d instanceof Date ? d.getTime() : Number(d), body: call.request, t: Date.now(),
        };
        calls.push(rec);
        Promise.resolve().then(() => decide(rec)).then(async (action) => {
            if (!action || action.ok) {
                callback(null, Buffer.alloc(0));
            } else if (action.forward) {
                const r = await forward(action.forward, rec.path, rec.body, rec.deadline);
                rec.forwarded = r.err ? r.err.code : 0;
                if (r.err) {
                    callback({ code: r.err.code, details: r.err.details });
                } else {
                    callback(null, r.res);
                }
            } else {
                const md = new grpc.Metadata();
                for (const [k, v] of Object.entries(action.trailers ?? {})) {
                    md.set(k, v);
                }
                callback({ code: action.code, details: action.details ?? '', metadata: md });
            }
        }, (e) => callback({ code: grpc.status.INTERNAL, details: String(e) }));
    };
    server.addService(
        { traces: rawMethod(EXPORT_PATH.traces), metrics: rawMethod(EXPORT_PATH.metrics),
          logs: rawMethod(EXPORT_PATH.logs) },
        { traces: handler('traces'), metrics: handler('metrics'), logs: handler('logs') });
    const bound = await new Promise((resolve, reject) => {
        server.bindAsync(`127.0.0.1:${port}`, credentials ?? grpc.ServerCredentials.createInsecure(),
                         (err, p) => (err ? reject(err) : resolve(p)));
    });
    return {
        port: bound,
        address: `127.0.0.1:${bound}`,
        calls,
        /** Stop at once: open calls are cancelled. */
        close: () => {
            for (const c of clients.values()) {
                c.close();
            }
            server.forceShutdown();
        },
    };
}

/**
 * An OTLP/HTTP server (node:http) on 127.0.0.1:port (0: any free port). Every request is
 * recorded in `requests` as {method, path, headers, body (as received: maybe compressed), t};
 * then `decide(req)` (may be async, e.g. to stall until a gate opens) says what to answer:
 *   undefined or {ok: true}: 200 with an empty protobuf response;
 *   {forward: 'http://host:port'}: the same request (path, content-type, content-encoding,
 *   body) to that server, its status and body relayed;
 *   {status, headers, body}: that answer.
 */
export async function startHttpBackend({ port = 0, decide = () => undefined } = {}) {
    const requests = [];
    const server = http.createServer((req, res) => {
        const chunks = [];
        req.on('data', (c) => chunks.push(c));
        req.on('end', async () => {
            const rec = { method: req.method, path: req.url, headers: req.headers, body: Buffer.concat(chunks),
                          t: Date.now() };
            requests.push(rec);
            try {
                const action = await decide(rec);
                if (!action || action.ok) {
                    res.writeHead(200, { 'content-type': 'application/x-protobuf' });
                    res.end();
                } else if (action.forward) {
                    const headers = {};
                    for (const k of ['content-type', 'content-encoding']) {
                        if (req.headers[k]) {
                            headers[k] = req.headers[k];
                        }
                    }
                    const r = await fetch(`${action.forward}${req.url}`, { method: 'POST', headers, body: rec.body });
                    const body = Buffer.from(await r.arrayBuffer());
                    rec.forwarded = r.status;
                    res.writeHead(r.status, { 'content-type': r.headers.get('content-type') ?? 'application/x-protobuf' });
                    res.end(body);
                } else {
                    res.writeHead(action.status, action.headers ?? {});
                    res.end(action.body ?? '');
                }
            } catch (e) {
                res.writeHead(500);
                res.end(String(e));
            }
        });
    });
    await new Promise((resolve, reject) => {
        server.once('error', reject);
        server.listen(port, '127.0.0.1', resolve);
    });
    const bound = server.address().port;
    return {
        port: bound,
        url: `http://127.0.0.1:${bound}`,
        requests,
        close: () => {
            server.closeAllConnections();
            server.close();
        },
    };
}

/**
 * A bare HTTP/2 server (node:http2, cleartext) that answers every gRPC call with success and
 * records {headers (as on the wire: grpc-encoding, grpc-timeout, ... included), frames: [{compressed,
 * payload}], t} in `calls`. For what @grpc/grpc-js hides from applications.
 */
export async function startRawH2Backend() {
    const calls = [];
    const server = http2.createServer();
    server.on('stream', (stream, headers) => {
        const chunks = [];
        stream.on('data', (c) => chunks.push(c));
        stream.on('end', () => {
            const data = Buffer.concat(chunks);
            const frames = [];
            for (let i = 0; i + 5 <= data.length;) {
                const len = data.readUInt32BE(i + 1);
                frames.push({ compressed: data[i], payload: data.subarray(i + 5, i + 5 + len) });
                i += 5 + len;
            }
            calls.push({ headers: { ...headers }, frames, t: Date.now() });
            stream.respond({ ':status': 200, 'content-type': 'application/grpc' }, { waitForTrailers: true });
            stream.on('wantTrailers', () => stream.sendTrailers({ 'grpc-status': '0' }));
            stream.end(Buffer.from([0, 0, 0, 0, 0])); // one uncompressed, empty response message
        });
    });
    await new Promise((resolve, reject) => {
        server.once('error', reject);
        server.listen(0, '127.0.0.1', resolve);
    });
    const port = server.address().port;
    const sessions = new Set();
    server.on('session', (s) => {
        sessions.add(s);
        s.on('close', () => sessions.delete(s));
    });
    return {
        port, address: `127.0.0.1:${port}`, calls,
        close: () => {
            for (const s of sessions) {
                s.destroy();
            }
            server.close();
        },
    };
}

/** Poll until fn() is truthy, returning its value (bounded; `what` names it in the error). */
export async function eventually(fn, timeoutMs, what) {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
        const v = await fn();
        if (v) {
            return v;
        }
        if (Date.now() > deadline) {
            throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
        }
        await sleep(50);
    }
}

// ---------------------------------------------------------------------------------------------
// Clients and load (shared by the exporter and processor tests)

const S = (ms) => ms * TIME_SCALE;

/** POST an OTLP/HTTP body; resolves to the status (or the error code of a failed connection). */
export function post(port, urlPath, body, contentType = 'application/x-protobuf') {
    return new Promise((resolve) => {
        const req = http.request({ host: '127.0.0.1', port, method: 'POST', path: urlPath, agent: false,
                                   headers: { 'content-type': contentType } }, (res) => {
            res.resume();
            res.on('end', () => resolve(res.statusCode));
        });
        req.on('error', (e) => resolve(e.code ?? e.message));
        req.setTimeout(S(30000), () => req.destroy(new Error('client timeout')));
        req.end(body);
    });
}

/** One unary gRPC Export call; resolves to 0 (OK) or the status code. */
export function grpcCall(client, path, bytes) {
    return new Promise((resolve) => {
        client.makeUnaryRequest(path, (b) => b, (b) => b, bytes, new grpc.Metadata(),
                                { deadline: Date.now() + S(30000) }, (err) => resolve(err ? err.code : 0));
    });
}

/** Names of the spans in a collector's file output (null while a line is half written). */
export function spanNamesIn(c) {
    const out = outputNow(c);
    return out ? flattenSpans(out.resourceSpans).map((s) => s.item.name) : null;
}

/** Wait until every name is in B's file; returns the names found (all occurrences). */
export async function waitDelivered(b, names, timeoutMs, what) {
    const want = new Set(names);
    return eventually(() => {
        const got = spanNamesIn(b);
        if (!got) {
            return null;
        }
        const have = new Set(got.filter((n) => want.has(n)));
        return have.size === want.size ? got : null;
    }, timeoutMs, what).catch((e) => {
        const got = new Set(spanNamesIn(b) ?? []);
        const missing = names.filter((n) => !got.has(n));
        e.message += `: ${missing.length} of ${names.length} missing, e.g. ${missing.slice(0, 5).join(', ')}`;
        throw e;
    });
}

/** Every name exactly once in the list. */
export function assertOnce(got, names, what) {
    const count = new Map();
    for (const n of got) {
        count.set(n, (count.get(n) ?? 0) + 1);
    }
    const missing = names.filter((n) => !count.has(n));
    const twice = names.filter((n) => (count.get(n) ?? 0) > 1).map((n) => `${n} x${count.get(n)}`);
    assert.deepEqual({ missing, twice }, { missing: [], twice: [] }, `${what}: every span exactly once`);
}

/** Run fn with every collector's output added to a failure. */
export async function withCollectors(list, fn) {
    try {
        return await fn();
    } catch (e) {
        await sleep(200);
        for (const [name, c] of Object.entries(list)) {
            if (c) {
                e.message += `\n=== collector ${name}\n${c.describe()}`;
            }
        }
        throw e;
    }
}

/** Whether a process runs under AddressSanitizer, ThreadSanitizer or valgrind (from its memory map). */
export function instrumented(pid) {
    try {
        return /libasan|libtsan|vgpreload|valgrind/.test(readFileSync(`/proc/${pid}/maps`, 'utf8'));
    } catch {
        return false;
    }
}

export const RETRYABLE_HTTP = new Set([429, 503]);
export const RETRYABLE_GRPC = new Set([grpc.status.UNAVAILABLE, grpc.status.RESOURCE_EXHAUSTED]);

/**
 * Send trace requests (padded by padBytes) to collector a from `workers` loops for `ms` (HTTP, and gRPC
 * from the workers viaGrpc(w) picks), sampling a's RSS. Returns the names accepted, the
 * requests refused with a retryable code, any other failures, and the peak RSS in KiB.
 */
export async function driveLoad(t, a, { workers, ms, padBytes, viaGrpc, prefix }) {
    const accepted = [];
    const refused = [];
    const otherFailures = [];
    let maxRss = 0;
    let stop = false;
    let seq = 0;
    const client = new grpc.Client(a.grpcAddress, grpc.credentials.createInsecure());
    t.after(() => client.close());
    const worker = async (w) => {
        while (!stop) {
            const name = `${prefix}.${w}.${seq++}`;
            const bytes = tracesProto(name, { padBytes }).bytes;
            const grpcCallee = viaGrpc(w);
            const code = grpcCallee ? await grpcCall(client, EXPORT_PATH.traces, bytes)
                                    : await post(a.httpPort, '/v1/traces', bytes);
            if (code === (grpcCallee ? 0 : 200)) {
                accepted.push(name);
            } else if ((grpcCallee ? RETRYABLE_GRPC : RETRYABLE_HTTP).has(code)) {
                refused.push({ name, via: grpcCallee ? 'grpc' : 'http', code });
            } else {
                otherFailures.push(`${name}: ${grpcCallee ? 'gRPC status' : 'HTTP'} ${code}`);
            }
        }
    };
    const sampler = setInterval(() => {
        maxRss = Math.max(maxRss, rssKb(a.proc.pid) ?? 0);
    }, 50);
    t.after(() => clearInterval(sampler));
    const running = Array.from({ length: workers }, (_, w) => worker(w));
    await sleep(ms);
    stop = true;
    await Promise.all(running);
    clearInterval(sampler);
    t.diagnostic(`under load: ${accepted.length} accepted, ${refused.length} refused ` +
                 `(${[...new Set(refused.map((r) => `${r.via} ${r.code}`))].join(', ')}), ` +
                 `peak RSS ${maxRss} KiB`);
    return { accepted, refused, otherFailures, maxRss };
}
