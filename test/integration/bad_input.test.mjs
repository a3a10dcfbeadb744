// bad_input.test.mjs: bad requests over OTLP/HTTP and OTLP/gRPC get the right error, and the
// collector keeps serving: after each bad request a good one gets 200 / OK, and at the end the
// file exporter holds exactly the good data (nothing from the bad requests).
import assert from 'node:assert/strict';
import http from 'node:http';
import http2 from 'node:http2';
import net from 'node:net';
import { after, before, describe, test } from 'node:test';
import zlib from 'node:zlib';

import { flattenLogs, flattenMetrics, flattenSpans, requireJs, startCollector } from '../js/harness.mjs';
import {
    decodeStatus, deepAttrJson, deepAttrProto, fMsg, fVarint, logsProto, metricsProto, sizedTraces,
    tracesJson, tracesProto,
} from '../js/otlp_build.mjs';

const grpc = requireJs('@grpc/grpc-js');

const MiB = 1024 * 1024;
const PB = 'application/x-protobuf';
const JSON_CT = 'application/json';
const TRACE_METHOD = '/opentelemetry.proto.collector.trace.v1.TraceService/Export';
const METRICS_METHOD = '/opentelemetry.proto.collector.metrics.v1.MetricsService/Export';
const LOGS_METHOD = '/opentelemetry.proto.collector.logs.v1.LogsService/Export';

let c; // the collector: http max_request_body_size 1MiB, grpc max_recv_msg_size_mib 1
const goodSpans = []; // names of the spans that must be in the output, once each
let goodMetric = null;
let goodLog = null;
let spellingsSpan = null; // the span sent with unusual JSON spellings, checked in the output

before(async () => {
    c = await startCollector({
        http: { max_request_body_size: '1MiB' },
        grpc: { max_recv_msg_size_mib: 1 },
    });
});

after(() => c?.kill());

/** One HTTP/1.1 request on a fresh connection. Resolves with the response even when the
 * server closes the connection before the whole body was sent. */
function request({ method = 'POST', path = '/v1/traces', headers = {}, body, chunks, port = c.httpPort }) {
    return new Promise((resolve, reject) => {
        const req = http.request({ host: '127.0.0.1', port, method, path, headers, agent: false },
            (res) => {
                const bufs = [];
                res.on('data', (d) => bufs.push(d));
                res.on('end', () => resolve({ status: res.statusCode, headers: res.headers,
                                              body: Buffer.concat(bufs) }));
                res.on('error', reject);
            });
        req.setTimeout(15000, () => req.destroy(new Error('no response within 15 s')));
        req.on('error', (e) => reject(new Error(`${method} ${path}: ${e.message} before a complete response`)));
        if (chunks) {
            for (const ch of chunks) {
                req.write(ch);
            }
            req.end();
        } else {
            req.end(body);
        }
    });
}

const describeRes = (res) => `HTTP ${res.status} ${res.headers['content-type'] ?? '(no content-type)'}: ` +
    `${res.body.subarray(0, 300).toString('utf8')}`;

/** An error response: the status, the request's content type, and a google.rpc.Status body. */
function assertErrorResponse(res, status, contentType, grpcCode) {
    assert.equal(res.status, status, `expected HTTP ${status}, got ${describeRes(res)}`);
    if (!contentType) {
        return;
    }
    const ct = (res.headers['content-type'] ?? '').split(';')[0].trim();
    assert.equal(ct, contentType, `the response must carry the request's content type: ${describeRes(res)}`);
    let st;
    if (contentType === JSON_CT) {
        st = JSON.parse(res.body.toString('utf8'));
        assert.equal(typeof st, 'object', `a google.rpc.Status JSON object: ${describeRes(res)}`);
        assert.equal(typeof st.code, 'number', `google.rpc.Status JSON has a numeric code: ${describeRes(res)}`);
    } else {
        st = decodeStatus(res.body);
    }
    assert.equal(typeof st.message, 'string', `google.rpc.Status has a message: ${describeRes(res)}`);
    assert.ok(st.message.length > 0, `google.rpc.Status message is not empty: ${describeRes(res)}`);
    if (grpcCode !== undefined) {
        assert.equal(st.code, grpcCode, `google.rpc.Status code: ${describeRes(res)}`);
    } else {
        assert.notEqual(st.code, 0, `google.rpc.Status code is not OK: ${describeRes(res)}`);
    }
}

/** A good OTLP/HTTP JSON export that must succeed and (later) show up in the file. */
async function good(label) {
    const name = `good:${label}`;
    const res = await request({ headers: { 'content-type': JSON_CT }, body: tracesJson(name).text });
    assert.equal(res.status, 200, `a good request after "${label}": ${describeRes(res)}`);
    assert.equal((res.headers['content-type'] ?? '').split(';')[0], JSON_CT, describeRes(res));
    const body = JSON.parse(res.body.toString('utf8'));
    assert.ok(!(body.partialSuccess?.rejectedSpans > 0), `good request was partly rejected: ${describeRes(res)}`);
    goodSpans.push(name);
}

/** A test case: run fn against the collector, then a good request; print the collector's
 * stderr when anything fails. */
function tcase(name, fn) {
    test(name, () => c.check(async () => {
        await fn();
        await good(name);
    }));
}

// A raw socket that sends `data` then closes; resolves when the server side is done with it.
function rawSendAndDestroy(port, data) {
    return new Promise((resolve, reject) => {
        const s = net.connect({ port, host: '127.0.0.1' }, () => {
            s.write(data, () => {
                s.destroy();
                resolve();
            });
        });
        s.on('error', reject);
    });
}


/** A raw HTTP/1.1 connection: write bytes, read whole responses (Content-Length or chunked). */
class RawHttp {
    constructor(port) {
        this.buf = Buffer.alloc(0);
        this.closed = false;
        this.waiters = [];
        this.sock = net.connect({ port, host: '127.0.0.1' });
        this.sock.on('data', (d) => {
            this.buf = Buffer.concat([this.buf, d]);
            this.wake();
        });
        this.sock.on('close', () => {
            this.closed = true;
            this.wake();
        });
        this.sock.on('error', () => {});
        this.connected = new Promise((resolve, reject) => {
            this.sock.once('connect', resolve);
            this.sock.once('error', reject);
        });
    }

    wake() {
        const w = this.waiters;
        this.waiters = [];
        w.forEach((f) => f());
    }

    write(data) {
        return new Promise((resolve) => this.sock.write(data, resolve));
    }

    /** Wait until pred(buffer) returns a value, the socket closes, or the bound passes. */
    async until(pred, ms, what) {
        const deadline = Date.now() + ms;
        for (;;) {
            const v = pred(this.buf);
            if (v) {
                return v;
            }
            if (this.closed) {
                throw new Error(`connection closed while waiting for ${what}; got: ${this.buf.toString('latin1').slice(0, 300)}`);
            }
            const left = deadline - Date.now();
            if (left <= 0) {
                throw new Error(`no ${what} within ${ms} ms; got: ${this.buf.toString('latin1').slice(0, 300)}`);
            }
            await new Promise((resolve) => {
                const t = setTimeout(resolve, left);
                this.waiters.push(() => {
                    clearTimeout(t);
                    resolve();
                });
            });
        }
    }

    /** The next complete response: {status, headers, body}; consumed from the buffer. */
    async response(ms = 10000) {
        const r = await this.until((b) => parseResponse(b), ms, 'complete HTTP response');
        this.buf = this.buf.subarray(r.length);
        return r;
    }

    close() {
        this.sock.destroy();
    }
}

/** Parse one HTTP response at the start of b, or return null when it is not complete yet. */
function parseResponse(b) {
    const end = b.indexOf('\r\n\r\n');
    if (end < 0) {
        return null;
    }
    const lines = b.subarray(0, end).toString('latin1').split('\r\n');
    const status = Number(lines[0].split(' ')[1]);
    const headers = {};
    for (const l of lines.slice(1)) {
        const i = l.indexOf(':');
        headers[l.slice(0, i).trim().toLowerCase()] = l.slice(i + 1).trim();
    }
    let pos = end + 4;
    if (status === 100 || status === 204 || status === 304) {
        return { status, headers, body: Buffer.alloc(0), length: pos };
    }
    if (/chunked/i.test(headers['transfer-encoding'] ?? '')) {
        const parts = [];
        for (;;) {
            const lineEnd = b.indexOf('\r\n', pos);
            if (lineEnd < 0) {
                return null;
            }
            const size = parseInt(b.subarray(pos, lineEnd).toString('latin1'), 16);
            if (b.length < lineEnd + 2 + size + 2) {
                return null;
            }
            parts.push(b.subarray(lineEnd + 2, lineEnd + 2 + size));
            pos = lineEnd + 2 + size + 2;
            if (size === 0) {
                return { status, headers, body: Buffer.concat(parts), length: pos };
            }
        }
    }
    const len = Number(headers['content-length'] ?? 0);
    if (b.length < pos + len) {
        return null;
    }
    return { status, headers, body: b.subarray(pos, pos + len), length: pos + len };
}

function httpRequestText(body, { contentType = JSON_CT, path = '/v1/traces', extra = '' } = {}) {
    const b = Buffer.isBuffer(body) ? body : Buffer.from(body);
    return Buffer.concat([Buffer.from(`POST ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: ${contentType}\r\n` +
                                      `Content-Length: ${b.length}\r\n${extra}\r\n`), b]);
}

describe('OTLP/HTTP', () => {
    tcase('malformed protobuf -> 400', async () => {
        // resource_spans with a length far past the end of the body.
        const body = Buffer.from([0x0a, 0xff, 0xff, 0xff, 0xff, 0x0f, 0x01]);
        assertErrorResponse(await request({ headers: { 'content-type': PB }, body }), 400, PB, 3);
    });
    tcase('protobuf with the wrong wire type -> 400', async () => {
        const body = fVarint(1, 5); // resource_spans (a message) sent as a varint
        assertErrorResponse(await request({ headers: { 'content-type': PB }, body }), 400, PB, 3);
    });
    tcase('truncated protobuf -> 400', async () => {
        const { bytes } = tracesProto('must-not-arrive:truncated');
        const body = bytes.subarray(0, bytes.length - 5);
        assertErrorResponse(await request({ headers: { 'content-type': PB }, body }), 400, PB, 3);
    });
    tcase('malformed JSON -> 400', async () => {
        const body = '{"resourceSpans":[{"scopeSpans":[{"spans":[{"name":"must-not-arrive:json"';
        assertErrorResponse(await request({ headers: { 'content-type': JSON_CT }, body }), 400, JSON_CT, 3);
    });
    tcase('JSON of the wrong shape -> 400', async () => {
        const body = '{"resourceSpans":"not an array"}';
        assertErrorResponse(await request({ headers: { 'content-type': JSON_CT }, body }), 400, JSON_CT, 3);
    });
    tcase('JSON with a trace id that is not hex -> 400', async () => {
        const { text } = tracesJson('must-not-arrive:bad-id', { traceId: 'zz'.repeat(16) });
        assertErrorResponse(await request({ headers: { 'content-type': JSON_CT }, body: text }), 400, JSON_CT, 3);
    });
    tcase('JSON with a trace id of the wrong length -> 400', async () => {
        const { text } = tracesJson('must-not-arrive:short-id', { traceId: 'abcd' });
        assertErrorResponse(await request({ headers: { 'content-type': JSON_CT }, body: text }), 400, JSON_CT, 3);
    });
    tcase('wrong content type -> 415', async () => {
        const res = await request({ headers: { 'content-type': 'text/plain' }, body: tracesJson('must-not-arrive:ct').text });
        assertErrorResponse(res, 415);
    });
    tcase('no content type -> 415', async () => {
        const res = await request({ body: tracesJson('must-not-arrive:no-ct').text });
        assertErrorResponse(res, 415);
    });
    tcase('body over max_request_body_size (Content-Length) -> 413', async () => {
        const { text } = tracesJson('must-not-arrive:big', { padBytes: 1.5 * MiB });
        assertErrorResponse(await request({ headers: { 'content-type': JSON_CT }, body: text }), 413, JSON_CT);
    });
    tcase('chunked body over max_request_body_size -> 413', async () => {
        const { bytes } = tracesProto('must-not-arrive:big-chunked', { padBytes: 1.5 * MiB });
        const chunks = [];
        for (let i = 0; i < bytes.length; i += 64 * 1024) {
            chunks.push(bytes.subarray(i, i + 64 * 1024));
        }
        assertErrorResponse(await request({ headers: { 'content-type': PB }, chunks }), 413, PB);
    });
    tcase('a body of exactly max_request_body_size -> 200, one byte more -> 413', async () => {
        for (const json of [false, true]) {
            const ct = json ? JSON_CT : PB;
            const at = sizedTraces(`good:exactly-limit-${json ? 'json' : 'pb'}`, MiB, { json });
            const res = await request({ headers: { 'content-type': ct }, body: at.bytes });
            assert.equal(res.status, 200, `${ct}, ${at.bytes.length} bytes: ${describeRes(res)}`);
            goodSpans.push(at.name);
            const over = sizedTraces(`must-not-arrive:limit-plus-one-${json ? 'json' : 'pb'}`, MiB + 1, { json });
            const res2 = await request({ headers: { 'content-type': ct }, body: over.bytes });
            assertErrorResponse(res2, 413, ct);
        }
    });
    tcase('gzip body that inflates to exactly max_request_body_size -> 200, one byte more -> 413', async () => {
        const at = sizedTraces('good:gzip-exactly-limit', MiB);
        const res = await request({ headers: { 'content-type': PB, 'content-encoding': 'gzip' },
                                    body: zlib.gzipSync(at.bytes) });
        assert.equal(res.status, 200, describeRes(res));
        goodSpans.push(at.name);
        const over = sizedTraces('must-not-arrive:gzip-limit-plus-one', MiB + 1);
        const res2 = await request({ headers: { 'content-type': PB, 'content-encoding': 'gzip' },
                                     body: zlib.gzipSync(over.bytes) });
        assertErrorResponse(res2, 413, PB);
    });
    tcase('gzip bomb: 50 MB of zeros -> 413', async () => {
        const body = zlib.gzipSync(Buffer.alloc(50 * 1000 * 1000), { level: 9 });
        const res = await request({ headers: { 'content-type': PB, 'content-encoding': 'gzip' }, body });
        assertErrorResponse(res, 413, PB);
    });
    tcase('gzip bomb: valid JSON padded with 50 MB of spaces -> 413', async () => {
        const text = `{"resourceSpans":[${' '.repeat(50 * 1000 * 1000)}]}`;
        const body = zlib.gzipSync(Buffer.from(text), { level: 9 });
        const res = await request({ headers: { 'content-type': JSON_CT, 'content-encoding': 'gzip' }, body });
        assertErrorResponse(res, 413, JSON_CT);
    });
    tcase('corrupt gzip body -> 400', async () => {
        const body = Buffer.from('this is not gzip at all');
        const res = await request({ headers: { 'content-type': PB, 'content-encoding': 'gzip' }, body });
        assertErrorResponse(res, 400, PB);
    });
    tcase('unknown Content-Encoding -> 400', async () => {
        const res = await request({ headers: { 'content-type': JSON_CT, 'content-encoding': 'x-unknown' },
                                    body: tracesJson('must-not-arrive:encoding').text });
        assertErrorResponse(res, 400, JSON_CT);
    });
    tcase('unknown path -> 404', async () => {
        const res = await request({ path: '/v1/unknown', headers: { 'content-type': JSON_CT },
                                    body: tracesJson('must-not-arrive:path').text });
        assert.equal(res.status, 404, describeRes(res));
        const root = await request({ path: '/', headers: { 'content-type': JSON_CT }, body: '{}' });
        assert.equal(root.status, 404, `POST /: ${describeRes(root)}`);
    });
    tcase('GET /v1/traces -> 405', async () => {
        const res = await request({ method: 'GET' });
        assert.equal(res.status, 405, describeRes(res));
        const put = await request({ method: 'PUT', path: '/v1/metrics', headers: { 'content-type': JSON_CT }, body: '{}' });
        assert.equal(put.status, 405, `PUT /v1/metrics: ${describeRes(put)}`);
    });
    tcase('half a body, then the client goes away', async () => {
        const { text } = tracesJson('must-not-arrive:half-body');
        const head = `POST /v1/traces HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n` +
            `Content-Length: ${text.length}\r\n\r\n`;
        await rawSendAndDestroy(c.httpPort, head + text.slice(0, text.length >> 1));
    });
    tcase('half a chunked body, then the client goes away', async () => {
        const { text } = tracesJson('must-not-arrive:half-chunked');
        const head = 'POST /v1/traces HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n' +
            'Transfer-Encoding: chunked\r\n\r\n';
        const half = text.slice(0, 40);
        await rawSendAndDestroy(c.httpPort, `${head}${half.length.toString(16)}\r\n${half}\r\n`);
    });
    tcase('half the headers, then the client goes away', async () => {
        await rawSendAndDestroy(c.httpPort, 'POST /v1/traces HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Ty');
    });
    tcase('garbage instead of HTTP -> the connection is answered or closed', async () => {
        await rawSendAndDestroy(c.httpPort, Buffer.from([0, 1, 2, 3, 0xff, 0xfe, 13, 10, 13, 10]));
    });
    tcase('empty protobuf request -> 200', async () => {
        const res = await request({ headers: { 'content-type': PB }, body: Buffer.alloc(0) });
        assert.equal(res.status, 200, describeRes(res));
        assert.equal((res.headers['content-type'] ?? '').split(';')[0], PB, describeRes(res));
    });
    tcase('empty JSON request -> 200', async () => {
        const res = await request({ headers: { 'content-type': JSON_CT }, body: '{}' });
        assert.equal(res.status, 200, describeRes(res));
        assert.equal((res.headers['content-type'] ?? '').split(';')[0], JSON_CT, describeRes(res));
        assert.equal(typeof JSON.parse(res.body.toString('utf8')), 'object', describeRes(res));
    });
    tcase('content type with parameters -> 200', async () => {
        const name = 'good:charset';
        const res = await request({ headers: { 'content-type': 'application/json; charset=utf-8' },
                                    body: tracesJson(name).text });
        assert.equal(res.status, 200, describeRes(res));
        goodSpans.push(name);
    });
    tcase('protobuf labelled application/json is sniffed -> 200', async () => {
        const name = 'good:sniffed-protobuf';
        const res = await request({ headers: { 'content-type': JSON_CT }, body: tracesProto(name).bytes });
        assert.equal(res.status, 200, describeRes(res));
        goodSpans.push(name);
    });
    tcase('deflate (zlib) Content-Encoding -> 200', async () => {
        const name = 'good:deflate';
        const res = await request({ headers: { 'content-type': PB, 'content-encoding': 'deflate' },
                                    body: zlib.deflateSync(tracesProto(name).bytes) });
        assert.equal(res.status, 200, describeRes(res));
        goodSpans.push(name);
    });
    tcase('JSON spellings: upper-case hex ids, snake_case keys, enum names, int64 as numbers -> 200', async () => {
        const name = 'good:json-spellings';
        const body = '{"resource_spans":[{"resource":{"attributes":[{"key":"service.name","value":{"string_value":"bad-input-test"}}]},' +
            '"scope_spans":[{"scope":{"name":"hand-built"},"spans":[{"trace_id":"0123456789ABCDEF0123456789ABCDEF",' +
            '"span_id":"FEDCBA9876543210","name":"' + name + '","kind":"SPAN_KIND_SERVER",' +
            '"start_time_unix_nano":1700000000000000001,"end_time_unix_nano":"1700000000000000002",' +
            '"attributes":[{"key":"i","value":{"int_value":9007199254740993}},{"key":"d","value":{"double_value":2.5}}],' +
            '"status":{"code":"STATUS_CODE_ERROR","message":"m"},"someFutureField":{"x":[1,2]}}]}]}]}';
        const res = await request({ headers: { 'content-type': JSON_CT }, body });
        assert.equal(res.status, 200, describeRes(res));
        goodSpans.push(name);
        spellingsSpan = name;
    });
    tcase('pipelined requests are answered in order', async () => {
        const conn = new RawHttp(c.httpPort);
        await conn.connected;
        try {
            const names = ['good:pipelined-1', 'good:pipelined-2'];
            await conn.write(Buffer.concat(names.map((n) => httpRequestText(tracesJson(n).text))));
            for (const n of names) {
                const r = await conn.response();
                assert.equal(r.status, 200, `${n}: HTTP ${r.status} ${r.body.toString('utf8').slice(0, 200)}`);
                goodSpans.push(n);
            }
        } finally {
            conn.close();
        }
    });
    tcase('Expect: 100-continue gets 100 Continue, then 200', async () => {
        const conn = new RawHttp(c.httpPort);
        await conn.connected;
        try {
            const name = 'good:expect-continue';
            const body = Buffer.from(tracesJson(name).text);
            const whole = httpRequestText(body, { extra: 'Expect: 100-continue\r\n' });
            await conn.write(whole.subarray(0, whole.length - body.length));
            const cont = await conn.response(2000);
            assert.equal(cont.status, 100, 'the interim response');
            await conn.write(body);
            const r = await conn.response();
            assert.equal(r.status, 200, `HTTP ${r.status} ${r.body.toString('utf8').slice(0, 200)}`);
            goodSpans.push(name);
        } finally {
            conn.close();
        }
    });
    tcase('a keep-alive connection still works after an error response', async () => {
        const conn = new RawHttp(c.httpPort);
        await conn.connected;
        try {
            await conn.write(httpRequestText('{"resourceSpans":[', {}));
            const bad = await conn.response();
            assert.equal(bad.status, 400, `the bad request: HTTP ${bad.status}`);
            if (/close/i.test(bad.headers.connection ?? '')) {
                return; // The server said it closes the connection: a client opens a new one.
            }
            const name = 'good:after-error-same-connection';
            await conn.write(httpRequestText(tracesJson(name).text));
            const r = await conn.response();
            assert.equal(r.status, 200, `the good request on the same connection: HTTP ${r.status}`);
            goodSpans.push(name);
        } finally {
            conn.close();
        }
    });
    tcase('a query string on the path is ignored -> 200', async () => {
        const name = 'good:query-string';
        const res = await request({ path: '/v1/traces?tenant=a&x=1', headers: { 'content-type': JSON_CT },
                                    body: tracesJson(name).text });
        assert.equal(res.status, 200, describeRes(res));
        goodSpans.push(name);
    });
    tcase('media types are case-insensitive -> 200', async () => {
        const name = 'good:upper-case-media-type';
        const res = await request({ headers: { 'content-type': 'Application/JSON' }, body: tracesJson(name).text });
        assert.equal(res.status, 200, describeRes(res));
        goodSpans.push(name);
    });
    tcase('an HTTP/1.0 request -> 200', async () => {
        const conn = new RawHttp(c.httpPort);
        await conn.connected;
        try {
            const name = 'good:http-1.0';
            const body = Buffer.from(tracesJson(name).text);
            await conn.write(Buffer.concat([Buffer.from('POST /v1/traces HTTP/1.0\r\nContent-Type: application/json\r\n' +
                                                        `Content-Length: ${body.length}\r\n\r\n`), body]));
            const r = await conn.response();
            assert.equal(r.status, 200, `HTTP ${r.status} ${r.body.toString('utf8').slice(0, 200)}`);
            goodSpans.push(name);
        } finally {
            conn.close();
        }
    });
    tcase('a trailing slash or another case is another path -> 404', async () => {
        for (const p of ['/v1/traces/', '/V1/TRACES', '/v1/traces/x']) {
            const res = await request({ path: p, headers: { 'content-type': JSON_CT }, body: tracesJson('must-not-arrive:path2').text });
            assert.equal(res.status, 404, `POST ${p}: ${describeRes(res)}`);
        }
    });
    tcase('good protobuf request -> 200 with an ExportTraceServiceResponse', async () => {
        const name = 'good:protobuf';
        const res = await request({ headers: { 'content-type': PB }, body: tracesProto(name).bytes });
        assert.equal(res.status, 200, describeRes(res));
        assert.equal((res.headers['content-type'] ?? '').split(';')[0], PB, describeRes(res));
        // ExportTraceServiceResponse: empty, or only partial_success (field 1) with nothing rejected.
        assert.ok(res.body.length === 0 || res.body[0] === 0x0a, `an ExportTraceServiceResponse: ${res.body.toString('hex')}`);
        if (res.body.length > 0) {
            assert.equal(res.body[1], res.body.length - 2, `one partial_success field: ${res.body.toString('hex')}`);
            assert.ok(!res.body.subarray(2).includes(0x08) || res.body[3] === 0,
                      `rejected_spans is 0: ${res.body.toString('hex')}`);
        }
        goodSpans.push(name);
    });
});

/** A unary gRPC call with raw bytes in and out. Resolves {err, resp}. */
function unary(client, method, bytes, deadlineMs = 15000) {
    return new Promise((resolve) => {
        client.makeUnaryRequest(method, (b) => b, (b) => b, bytes, new grpc.Metadata(),
                                { deadline: Date.now() + deadlineMs },
                                (err, resp) => resolve({ err, resp }));
    });
}

const grpcName = (code) => Object.keys(grpc.status).find((k) => grpc.status[k] === code) ?? String(code);

function assertGrpcCode(r, code, what) {
    const got = r.err ? r.err.code : grpc.status.OK;
    assert.equal(got, code, `${what}: expected ${grpcName(code)} (${code}), got ${grpcName(got)} (${got}): ` +
                 `${r.err?.details ?? 'OK'}`);
}

describe('OTLP/gRPC', () => {
    let client;
    let gzipClient;
    before(() => {
        client = new grpc.Client(c.grpcAddress, grpc.credentials.createInsecure());
        gzipClient = new grpc.Client(c.grpcAddress, grpc.credentials.createInsecure(),
                                     { 'grpc.default_compression_algorithm': 2 /* gzip */ });
    });
    after(() => {
        client?.close();
        gzipClient?.close();
    });

    async function goodGrpc(label) {
        const name = `grpc-good:${label}`;
        const r = await unary(client, TRACE_METHOD, tracesProto(name).bytes);
        assertGrpcCode(r, grpc.status.OK, `a good Export after "${label}"`);
        goodSpans.push(name);
    }

    function gcase(name, fn) {
        test(name, () => c.check(async () => {
            await fn();
            await goodGrpc(name);
        }));
    }

    gcase('good Export of each signal -> OK', async () => {
        goodMetric = 'grpc-good-metric';
        goodLog = 'grpc-good-log';
        assertGrpcCode(await unary(client, METRICS_METHOD, metricsProto(goodMetric, -3).bytes), grpc.status.OK, 'metrics');
        assertGrpcCode(await unary(client, LOGS_METHOD, logsProto(goodLog).bytes), grpc.status.OK, 'logs');
        const r = await unary(gzipClient, TRACE_METHOD, tracesProto('grpc-good:gzip').bytes);
        assertGrpcCode(r, grpc.status.OK, 'gzip-compressed traces');
        goodSpans.push('grpc-good:gzip');
    });
    gcase('empty request -> OK', async () => {
        assertGrpcCode(await unary(client, TRACE_METHOD, Buffer.alloc(0)), grpc.status.OK, 'empty request');
    });
    gcase('malformed protobuf -> INVALID_ARGUMENT', async () => {
        const r = await unary(client, TRACE_METHOD, Buffer.from([0x0a, 0xff, 0xff, 0xff, 0xff, 0x0f, 0x01]));
        assertGrpcCode(r, grpc.status.INVALID_ARGUMENT, 'malformed protobuf');
        const r2 = await unary(client, LOGS_METHOD, fMsg(1, fVarint(2, 1)).subarray(0, 3));
        assertGrpcCode(r2, grpc.status.INVALID_ARGUMENT, 'truncated logs request');
    });
    gcase('unknown method -> UNIMPLEMENTED', async () => {
        const r = await unary(client, '/opentelemetry.proto.collector.trace.v1.TraceService/Nope', Buffer.alloc(0));
        assertGrpcCode(r, grpc.status.UNIMPLEMENTED, 'unknown method of a known service');
        const r2 = await unary(client, '/no.such.Service/Export', tracesProto('must-not-arrive:svc').bytes);
        assertGrpcCode(r2, grpc.status.UNIMPLEMENTED, 'unknown service');
    });
    gcase('message over max_recv_msg_size_mib -> RESOURCE_EXHAUSTED', async () => {
        const { bytes } = tracesProto('must-not-arrive:grpc-big', { padBytes: 1.5 * MiB });
        assertGrpcCode(await unary(client, TRACE_METHOD, bytes), grpc.status.RESOURCE_EXHAUSTED, '1.5 MiB message');
    });
    gcase('a message of exactly max_recv_msg_size_mib -> OK, one byte more -> RESOURCE_EXHAUSTED', async () => {
        const at = sizedTraces('grpc-good:exactly-limit', MiB);
        assertGrpcCode(await unary(client, TRACE_METHOD, at.bytes), grpc.status.OK, `${MiB} bytes`);
        goodSpans.push(at.name);
        const over = sizedTraces('must-not-arrive:grpc-limit-plus-one', MiB + 1);
        assertGrpcCode(await unary(client, TRACE_METHOD, over.bytes), grpc.status.RESOURCE_EXHAUSTED, `${MiB + 1} bytes`);
    });
    gcase('gzip-compressed message that inflates over the limit -> RESOURCE_EXHAUSTED', async () => {
        const { bytes } = tracesProto('must-not-arrive:grpc-bomb', { padBytes: 8 * MiB });
        assertGrpcCode(await unary(gzipClient, TRACE_METHOD, bytes), grpc.status.RESOURCE_EXHAUSTED,
                       '8 MiB message, gzip-compressed');
    });
    gcase('half a message, then the stream is reset', async () => {
        const session = http2.connect(`http://${c.grpcAddress}`);
        session.on('error', () => {});
        const stream = session.request({
            ':method': 'POST', ':path': TRACE_METHOD, 'content-type': 'application/grpc', te: 'trailers',
        });
        stream.on('error', () => {});
        const { bytes } = tracesProto('must-not-arrive:half-message');
        const prefix = Buffer.alloc(5);
        prefix.writeUInt32BE(bytes.length, 1);
        await new Promise((resolve) => stream.write(Buffer.concat([prefix, bytes.subarray(0, 10)]), resolve));
        stream.close(http2.constants.NGHTTP2_CANCEL);
        await new Promise((resolve) => session.close(resolve));
    });
    gcase('half a message, then the connection drops', async () => {
        const session = http2.connect(`http://${c.grpcAddress}`);
        session.on('error', () => {});
        const stream = session.request({
            ':method': 'POST', ':path': TRACE_METHOD, 'content-type': 'application/grpc', te: 'trailers',
        });
        stream.on('error', () => {});
        const prefix = Buffer.from([0, 0, 0, 4, 0]);
        await new Promise((resolve) => stream.write(prefix, resolve));
        session.destroy();
    });
});


// Values nested deeper than a decoder's stack can follow. Each case gets its own collector, so
// that a crash shows up as exactly one failing case. The collector may accept (then the data
// must reach the file) or reject with 400 / INVALID_ARGUMENT, and it must keep running.
describe('deeply nested AnyValue', () => {
    for (const depth of [100, 200, 5000, 100000]) {
        for (const transport of ['http/protobuf', 'http/json', 'grpc']) {
            test(`${depth} levels over ${transport}: answered, collector keeps running, accepted data arrives`, async (t) => {
                const d = await startCollector();
                t.after(() => d.kill());
                await d.check(async () => {
                    const name = `nested:${transport}:${depth}`;
                    let accepted;
                    if (transport === 'grpc') {
                        const client = new grpc.Client(d.grpcAddress, grpc.credentials.createInsecure());
                        try {
                            const r = await unary(client, TRACE_METHOD, tracesProto(name, { spanExtra: deepAttrProto(depth) }).bytes);
                            const code = r.err ? r.err.code : 0;
                            assert.ok(code === grpc.status.OK || code === grpc.status.INVALID_ARGUMENT,
                                      `expected OK or INVALID_ARGUMENT, got ${grpcName(code)}: ${r.err?.details ?? ''}`);
                            accepted = code === grpc.status.OK;
                        } finally {
                            client.close();
                        }
                    } else {
                        const json = transport === 'http/json';
                        const body = json
                            ? tracesJson(name).text.replace('"attributes":[]', `"attributes":${deepAttrJson(depth)}`)
                            : tracesProto(name, { spanExtra: deepAttrProto(depth) }).bytes;
                        const res = await request({ port: d.httpPort, headers: { 'content-type': json ? JSON_CT : PB }, body });
                        assert.ok(res.status === 200 || res.status === 400, `expected 200 or 400: ${describeRes(res)}`);
                        accepted = res.status === 200;
                    }
                    const goodName = `good:after-nested:${transport}:${depth}`;
                    const res = await request({ port: d.httpPort, headers: { 'content-type': JSON_CT },
                                                body: tracesJson(goodName).text });
                    assert.equal(res.status, 200, `a good request afterwards: ${describeRes(res)}`);
                    await d.stop();
                    const names = flattenSpans(d.output().resourceSpans).map((x) => x.item.name);
                    assert.ok(names.includes(goodName), 'the good request after it reached the file');
                    if (accepted) {
                        assert.ok(names.includes(name), 'the nested span was accepted, so it must reach the file ' +
                                  '(answering 200 and then dropping it loses data silently)');
                    } else {
                        assert.ok(!names.includes(name), 'the nested span was rejected, yet it is in the file');
                    }
                });
            });
        }
    }
});

describe('output', () => {
    test('after SIGTERM the file holds every good item once and nothing else', () => c.check(async () => {
        await c.stop();
        const out = c.output();
        const names = flattenSpans(out.resourceSpans).map((s) => s.item.name);
        const counts = new Map();
        for (const n of names) {
            counts.set(n, (counts.get(n) ?? 0) + 1);
        }
        const missing = goodSpans.filter((n) => !counts.has(n));
        assert.deepEqual(missing, [], 'good spans missing from the output');
        for (const [n, k] of counts) {
            assert.ok(goodSpans.includes(n), `unexpected span "${n}" in the output (from a bad request?)`);
            assert.equal(k, 1, `span "${n}" arrived ${k} times`);
        }
        assert.ok(goodMetric && goodLog, 'the gRPC good-export test ran');
        if (spellingsSpan) {
            const sp = flattenSpans(out.resourceSpans).find((x) => x.item.name === spellingsSpan)?.item;
            assert.ok(sp, 'the JSON-spellings span arrived');
            assert.equal(sp.traceId, '0123456789abcdef0123456789abcdef', 'ids are written as lower-case hex');
            assert.equal(sp.spanId, 'fedcba9876543210', 'ids are written as lower-case hex');
            assert.equal(sp.kind, 2, 'SPAN_KIND_SERVER is 2');
            assert.equal(sp.startTimeUnixNano, '1700000000000000001', 'an int64 sent as a JSON number, exactly');
            assert.equal(sp.endTimeUnixNano, '1700000000000000002');
            assert.deepEqual(sp.attributes, [{ key: 'i', value: { intValue: '9007199254740993' } },
                                             { key: 'd', value: { doubleValue: 2.5 } }], 'attributes');
            assert.deepEqual(sp.status, { code: 2, message: 'm' }, 'status');
        }
        const metrics = flattenMetrics(out.resourceMetrics).map((m) => m.item);
        assert.deepEqual(metrics.map((m) => m.name), [goodMetric], 'metrics in the output');
        assert.equal(metrics[0].gauge.dataPoints[0].asInt, '-3', 'the gauge value (int64 as a JSON string)');
        const logs = flattenLogs(out.resourceLogs).map((l) => l.item);
        assert.deepEqual(logs.map((l) => l.body), [{ stringValue: goodLog }], 'logs in the output');
    }));
});
