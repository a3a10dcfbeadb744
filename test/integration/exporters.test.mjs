// exporters.test.mjs: the `otlp` (gRPC) and `otlphttp` exporters, seen from outside.
//
// Collector A (otlp receiver -> [batch] -> exporter under test) sends to collector B (otlp
// receiver -> file) or to a stand-in backend of test/js/relay.mjs that records what arrives and
// answers as the test decides (success, a status, a delay, a stall, or forward to B):
//   - chain: what the OpenTelemetry JS SDK sends to A arrives in B's file exactly as sent, over
//     `otlp`, `otlphttp` with protobuf and `otlphttp` with JSON;
//   - the requests: method paths, gzip, configured headers, deadline, per-signal URLs;
//   - failures: B down then up (nothing lost, nothing twice), Retry-After / RetryInfo honoured,
//     permanent errors dropped once and logged while later data flows;
//   - backpressure: a tiny sending queue in front of a stalled backend makes A's receiver refuse
//     with retryable errors, A's memory stays bounded, and what A accepted is delivered later;
//   - shutdown: SIGTERM drains the queue to a slow but live backend.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import http from 'node:http';
import { describe, test } from 'node:test';

import {
    flattenLogs, flattenMetrics, flattenSpans, freePorts, requireJs, sleep, startCollector, TIME_SCALE,
} from '../js/harness.mjs';
import { fBytes, fMsg, fString, fVarint, logsProto, metricsProto, tracesProto } from '../js/otlp_build.mjs';
import { attrKey, canonical, parseJsonBytes } from '../js/otlp_json.mjs';
import {
    assertOnce, driveLoad, EXPORT_PATH, eventually, gate, grpcCall, instrumented, outputNow, post, relayYaml,
    rssKb, sinkYaml, spanNamesIn, spanNamesOfHttpBody, spanNamesOfRequest, startGrpcBackend, startHttpBackend,
    startRawH2Backend, waitDelivered, withCollectors,
} from '../js/relay.mjs';

const grpc = requireJs('@grpc/grpc-js');
const api = requireJs('@opentelemetry/api');
const apiLogs = requireJs('@opentelemetry/api-logs');
const { ExportResultCode } = requireJs('@opentelemetry/core');
const { resourceFromAttributes } = requireJs('@opentelemetry/resources');
const { BasicTracerProvider, InMemorySpanExporter, SimpleSpanProcessor } = requireJs('@opentelemetry/sdk-trace-base');
const { AggregationType, MeterProvider, MetricReader } = requireJs('@opentelemetry/sdk-metrics');
const { LoggerProvider, InMemoryLogRecordExporter, SimpleLogRecordProcessor } = requireJs('@opentelemetry/sdk-logs');
const { JsonTraceSerializer, JsonMetricsSerializer, JsonLogsSerializer } = requireJs('@opentelemetry/otlp-transformer');

// The SDK exporters must talk to the collector of the test, whatever the environment says.
for (const k of Object.keys(process.env)) {
    if (k.startsWith('OTEL_')) {
        delete process.env[k];
    }
}
api.diag.setLogger(new api.DiagConsoleLogger(), api.DiagLogLevel.WARN);

const S = (ms) => ms * TIME_SCALE;

/** Retries fast enough for a test: first after about 100 ms, then at most every 500 ms. */
const FAST_RETRY = {
    enabled: true, initial_interval: '100ms', randomization_factor: 0.1, multiplier: 1.5, max_interval: '500ms',
    max_elapsed_time: '120s',
};

// ---------------------------------------------------------------------------------------------
// Small clients

/** Send one span named `name` to collector c over OTLP/HTTP protobuf and require 200. */
async function sendSpan(c, name, opts) {
    const st = await post(c.httpPort, '/v1/traces', tracesProto(name, opts).bytes);
    assert.equal(st, 200, `collector A answered ${st} to the span ${name}`);
}

// ---------------------------------------------------------------------------------------------
// Chain: the JS SDK -> A -> B, compared item by item with what the SDK exported

const EVERY_TYPE = {
    'attr.string': 'value', 'attr.empty_string': '', 'attr.unicode': 'h\u00e9llo \u2713 \u65e5\u672c \u{1F600}',
    'attr.escapes': 'quote" backslash\\ newline\n tab\t ctl\u0001', 'attr.bool_true': true, 'attr.bool_false': false,
    'attr.int': 42, 'attr.int_zero': 0, 'attr.int_negative': -7, 'attr.int_max_safe': Number.MAX_SAFE_INTEGER,
    'attr.int_2_60': 2 ** 60, 'attr.double': 1.5, 'attr.double_tenth': 0.1, 'attr.double_negative': -2.5e-300,
    'attr.array_string': ['a', '', 'c'], 'attr.array_bool': [true, false], 'attr.array_int': [1, -2, 0],
    'attr.array_double': [1.5, -2.25], 'attr.array_empty': [], 'attr.long_string': 'x'.repeat(5000),
};

async function makeSpans(resource) {
    const mem = new InMemorySpanExporter();
    const provider = new BasicTracerProvider({ resource, spanProcessors: [new SimpleSpanProcessor(mem)] });
    const tracer = provider.getTracer('chain-traces', '1.2.3', { schemaUrl: 'https://opentelemetry.io/schemas/1.26.0' });
    const root = tracer.startSpan('root', { kind: api.SpanKind.SERVER, attributes: EVERY_TYPE,
                                            startTime: [1700000000, 123456789] });
    const rootCtx = api.trace.setSpan(api.ROOT_CONTEXT, root);
    root.addEvent('event.with.attributes', { 'ev.string': 's', 'ev.int': 1, 'ev.array': ['p', 'q'] },
                  [1700000000, 200000001]);
    root.addEvent('event.without.attributes');
    root.setStatus({ code: api.SpanStatusCode.OK });
    for (const kind of ['INTERNAL', 'SERVER', 'CLIENT', 'PRODUCER', 'CONSUMER']) {
        const child = tracer.startSpan(`child.${kind.toLowerCase()}`, { kind: api.SpanKind[kind] }, rootCtx);
        if (kind === 'CLIENT') {
            const g = tracer.startSpan('grandchild', {}, api.trace.setSpan(rootCtx, child));
            g.setStatus({ code: api.SpanStatusCode.ERROR, message: 'it failed: \u00e9\n' });
            g.recordException(new Error('boom'));
            g.end();
        }
        child.end();
    }
    const linked = {
        traceId: '0af7651916cd43dd8448eb211c80319c', spanId: 'b7ad6b7169203331', traceFlags: api.TraceFlags.SAMPLED,
        traceState: api.createTraceState('vendor1=value1,vendor2=value2'), isRemote: true,
    };
    tracer.startSpan('with.links', {
        kind: api.SpanKind.CONSUMER, startTime: [1700000001, 1],
        links: [{ context: linked, attributes: { 'link.string': 'l', 'link.int': 2 } },
                { context: { ...linked, spanId: '00f067aa0ba902b7', traceState: undefined, traceFlags: 0 } }],
    }, rootCtx).end([1700000001, 999999999]);
    tracer.startSpan('remote.child', { kind: api.SpanKind.SERVER }, api.trace.setSpanContext(api.ROOT_CONTEXT, linked)).end();
    for (let i = 0; i < 60; i++) {
        tracer.startSpan(`bulk.${i}`, { attributes: { 'bulk.i': i } }, rootCtx).end();
    }
    root.end([1700000002, 5]);
    await provider.forceFlush();
    const spans = mem.getFinishedSpans();
    await provider.shutdown();
    return spans;
}

class ManualReader extends MetricReader {
    async onShutdown() {}
    async onForceFlush() {}
}

async function makeMetrics(resource) {
    const reader = new ManualReader();
    const provider = new MeterProvider({
        resource, readers: [reader],
        views: [{ instrumentName: 'chain.exp_latency', aggregation: { type: AggregationType.EXPONENTIAL_HISTOGRAM } }],
    });
    const meter = provider.getMeter('chain-metrics', '4.5.6');
    const a = { 'http.method': 'GET', 'http.status_code': 200 };
    const b = { 'http.method': 'POST', ok: false, ratio: 0.5 };
    const counter = meter.createCounter('chain.requests', { description: 'requests served', unit: '{request}' });
    counter.add(3, a);
    counter.add(2.5, b);
    meter.createCounter('chain.int_requests', { valueType: api.ValueType.INT }).add(5, a);
    const updown = meter.createUpDownCounter('chain.queue_depth');
    updown.add(5, a);
    updown.add(-4, b);
    meter.createObservableGauge('chain.temperature', { unit: 'Cel' }).addCallback((obs) => {
        obs.observe(21.5, { room: 'a' });
        obs.observe(-3, { room: 'b' });
    });
    meter.createGauge('chain.sync_gauge', { valueType: api.ValueType.INT }).record(17, a);
    const hist = meter.createHistogram('chain.latency', { unit: 'ms', advice: { explicitBucketBoundaries: [0, 10, 100] } });
    for (const v of [0, 5, 15, 150, 7.5]) {
        hist.record(v, a);
    }
    hist.record(1, b);
    const expHist = meter.createHistogram('chain.exp_latency', { unit: 's' });
    for (const v of [0, 0.001, 0.5, 2, 300]) {
        expHist.record(v, a);
    }
    const { resourceMetrics, errors } = await reader.collect();
    assert.deepEqual(errors, [], 'the SDK reported errors while collecting');
    await provider.shutdown();
    return resourceMetrics;
}

async function makeLogs(resource, spanCtx) {
    const mem = new InMemoryLogRecordExporter();
    const provider = new LoggerProvider({ resource, processors: [new SimpleLogRecordProcessor({ exporter: mem })] });
    const logger = provider.getLogger('chain-logs', '0.1.0');
    const inSpan = api.trace.setSpanContext(api.ROOT_CONTEXT, spanCtx);
    logger.emit({ severityNumber: apiLogs.SeverityNumber.INFO, severityText: 'INFO', body: 'a string body',
                  attributes: { 'log.seq': 1, ...EVERY_TYPE }, context: inSpan,
                  timestamp: [1700000003, 1], observedTimestamp: [1700000003, 2] });
    logger.emit({ severityNumber: apiLogs.SeverityNumber.ERROR3, severityText: 'error',
                  body: { message: 'a map body', count: 3, nested: { deep: ['x', 1, false] } },
                  attributes: { 'log.seq': 2, 'log.nested': { inner: 'v' } }, eventName: 'chain.event' });
    logger.emit({ severityNumber: apiLogs.SeverityNumber.FATAL4, body: 42, attributes: { 'log.seq': 3 } });
    logger.emit({ body: new Uint8Array([0, 1, 2, 253, 254, 255]), attributes: { 'log.seq': 4 } });
    for (let i = 5; i < 25; i++) {
        logger.emit({ body: `bulk log ${i}`, attributes: { 'log.seq': i } });
    }
    await provider.forceFlush();
    const records = mem.getFinishedLogRecords();
    await provider.shutdown();
    return records;
}

/** The SDK's OTLP exporters for one transport ('grpc' or 'http/protobuf') pointed at collector c. */
function sdkExporters(transport, c) {
    const pkg = transport === 'grpc' ? 'grpc' : 'proto';
    const { OTLPTraceExporter } = requireJs(`@opentelemetry/exporter-trace-otlp-${pkg}`);
    const { OTLPMetricExporter } = requireJs(`@opentelemetry/exporter-metrics-otlp-${pkg}`);
    const { OTLPLogExporter } = requireJs(`@opentelemetry/exporter-logs-otlp-${pkg}`);
    const url = (p) => (transport === 'grpc' ? `http://${c.grpcAddress}` : `${c.httpUrl}${p}`);
    const common = { timeoutMillis: 15000 };
    return {
        traces: new OTLPTraceExporter({ ...common, url: url('/v1/traces') }),
        metrics: new OTLPMetricExporter({ ...common, url: url('/v1/metrics') }),
        logs: new OTLPLogExporter({ ...common, url: url('/v1/logs') }),
    };
}

function exportWith(exporter, items, what) {
    return new Promise((resolve, reject) => {
        exporter.export(items, (res) => (res.code === ExportResultCode.SUCCESS ? resolve()
            : reject(new Error(`${what}: the SDK exporter reported failure: ${res.error}`))));
    });
}

/** Collects every difference so that one run reports all of them. */
class Mismatches {
    constructor() { this.list = []; }

    check(fn) {
        try {
            fn();
        } catch (e) {
            this.list.push(e.message.length > 3000 ? `${e.message.slice(0, 3000)}...` : e.message);
        }
    }

    done(what) {
        if (this.list.length > 0) {
            assert.fail(`${this.list.length} ${what} differ from what the SDK sent:\n\n${this.list.slice(0, 10).join('\n\n')}`);
        }
    }
}

const spanKey = (s) => `${String(s.traceId).toLowerCase()}/${String(s.spanId).toLowerCase()}`;

/** Each item of `expected` (flattened reference) is in `actual` once and equal, with its
 * resource and scope; keyOf names an item. */
function compareItems(expected, actual, keyOf, bad, what) {
    const byKey = new Map();
    for (const a of actual) {
        const k = keyOf(a.item);
        byKey.set(k, [...(byKey.get(k) ?? []), a]);
    }
    for (const [k, list] of byKey) {
        bad.check(() => assert.equal(list.length, 1, `${what} ${k} arrived ${list.length} times`));
    }
    bad.check(() => assert.deepEqual([...byKey.keys()].sort(), expected.map((e) => keyOf(e.item)).sort(),
                                     `the set of ${what}s in B's output differs from the set the SDK exported`));
    for (const e of expected) {
        const a = byKey.get(keyOf(e.item))?.[0];
        if (!a) {
            continue;
        }
        const w = `${what} ${keyOf(e.item)}`;
        bad.check(() => assert.deepEqual(canonical(a.item, w, true), canonical(e.item), w));
        bad.check(() => assert.deepEqual(canonical(a.resource, w, true), canonical(e.resource), `${w}: resource`));
        bad.check(() => assert.deepEqual(canonical(a.scope, w, true), canonical(e.scope), `${w}: scope`));
    }
}

function checkTraces(spans, out) {
    const expected = flattenSpans(parseJsonBytes(JsonTraceSerializer.serializeRequest(spans)).resourceSpans);
    const bad = new Mismatches();
    compareItems(expected, flattenSpans(out.resourceSpans), spanKey, bad, 'span');
    bad.done('spans');
}

const METRIC_TYPES = ['sum', 'gauge', 'histogram', 'exponentialHistogram', 'summary'];

/** A metric with its data points sorted by attributes, for comparison. */
function sortedPoints(m) {
    const c = structuredClone(m);
    for (const t of METRIC_TYPES.filter((x) => x in c)) {
        c[t].dataPoints.sort((x, y) => (attrKey(x.attributes) < attrKey(y.attributes) ? -1 : 1));
    }
    return c;
}

function checkMetrics(resourceMetrics, out) {
    const expected = flattenMetrics(parseJsonBytes(JsonMetricsSerializer.serializeRequest(resourceMetrics)).resourceMetrics);
    // The batch processor may split one metric's points over several entries: merge them back.
    const actual = [];
    for (const a of flattenMetrics(out.resourceMetrics)) {
        const prev = actual.find((x) => x.item.name === a.item.name);
        if (!prev) {
            actual.push({ ...a, item: structuredClone(a.item) });
            continue;
        }
        const t = METRIC_TYPES.find((x) => x in a.item);
        prev.item[t].dataPoints.push(...a.item[t].dataPoints);
    }
    const bad = new Mismatches();
    compareItems(expected.map((e) => ({ ...e, item: sortedPoints(e.item) })),
                 actual.map((a) => ({ ...a, item: sortedPoints(a.item) })), (m) => m.name, bad, 'metric');
    bad.done('metrics');
}

function checkLogs(records, out) {
    const expected = flattenLogs(parseJsonBytes(JsonLogsSerializer.serializeRequest(records)).resourceLogs);
    const seq = (r) => String((r.attributes ?? []).find((x) => x.key === 'log.seq')?.value?.intValue ?? 'none');
    const bad = new Mismatches();
    compareItems(expected, flattenLogs(out.resourceLogs), seq, bad, 'log record');
    bad.done('log records');
}

const CHAINS = [
    { label: 'otlp (gRPC, gzip)', sdk: 'grpc', front: false,
      exporter: (b) => ['otlp', { endpoint: b.grpcAddress, tls: { insecure: true } }] },
    { label: 'otlphttp, encoding proto (gzip)', sdk: 'http/protobuf', front: true, contentType: 'application/x-protobuf',
      contentEncoding: 'gzip', exporter: (b, f) => ['otlphttp', { endpoint: f.url, encoding: 'proto' }] },
    { label: 'otlphttp, encoding json (no compression)', sdk: 'grpc', front: true, contentType: 'application/json',
      contentEncoding: undefined,
      exporter: (b, f) => ['otlphttp', { endpoint: f.url, encoding: 'json', compression: 'none' }] },
];

describe('chain: JS SDK -> A -> B, every item arrives as sent', () => {
    for (const chain of CHAINS) {
        test(chain.label, { timeout: S(120000) }, async (t) => {
            const b = await startCollector({ yaml: sinkYaml() });
            t.after(() => b.kill());
            // For otlphttp an HTTP backend in between forwards to B and shows what went on the wire.
            const front = chain.front ? await startHttpBackend({ decide: () => ({ forward: b.httpUrl }) }) : null;
            t.after(() => front?.close());
            const [name, cfg] = chain.exporter(b, front);
            const a = await startCollector({ yaml: relayYaml(name, { ...cfg, retry_on_failure: FAST_RETRY }) });
            t.after(() => a.kill());
            await withCollectors({ A: a, B: b }, async () => {
                const resource = resourceFromAttributes({
                    'service.name': 'otelmon-chain', 'chain.exporter': chain.label, 'res.int': 7, 'res.double': 0.25,
                    'res.bool': false, 'res.array': ['x', 'y'],
                });
                const spans = await makeSpans(resource);
                const metrics = await makeMetrics(resource);
                const logs = await makeLogs(resource, spans.find((s) => s.name === 'root').spanContext());
                const exp = sdkExporters(chain.sdk, a);
                try {
                    await exportWith(exp.traces, spans, 'traces');
                    await exportWith(exp.metrics, metrics, 'metrics');
                    await exportWith(exp.logs, logs, 'logs');
                } finally {
                    await Promise.all([exp.traces.shutdown(), exp.metrics.shutdown(), exp.logs.shutdown()]);
                }
                // A's shutdown drains what it holds to B; then B writes everything out.
                await a.stop(S(30000));
                await b.stop();
                const out = b.output();
                if (front) {
                    assert.ok(front.requests.length >= 3, `requests seen between A and B: ${front.requests.length}`);
                    for (const r of front.requests) {
                        assert.equal(r.headers['content-type'], chain.contentType, `content-type of ${r.path}`);
                        assert.equal(r.headers['content-encoding'], chain.contentEncoding, `content-encoding of ${r.path}`);
                    }
                    assert.deepEqual([...new Set(front.requests.map((r) => r.path))].sort(),
                                     ['/v1/logs', '/v1/metrics', '/v1/traces'], 'paths of the requests');
                }
                await t.test('traces', () => checkTraces(spans, out));
                await t.test('metrics', () => checkMetrics(metrics, out));
                await t.test('logs', () => checkLogs(logs, out));
            });
        });
    }
});

// ---------------------------------------------------------------------------------------------
// What the exporters put on the wire

describe('requests seen by an independent receiver', () => {
    test('otlp: method paths, headers as metadata, the deadline (grpc-js server as Tempo)', { timeout: S(60000) },
         async (t) => {
             const tempo = await startGrpcBackend();
             t.after(() => tempo.close());
             const a = await startCollector({
                 yaml: relayYaml('otlp', {
                     endpoint: tempo.address, tls: { insecure: true }, timeout: '7s',
                     headers: { 'X-Scope-OrgID': 'tenant-42', 'X-Extra-Header': 'extra value' },
                 }),
             });
             t.after(() => a.kill());
             await withCollectors({ A: a }, async () => {
                 await sendSpan(a, 'tempo.span');
                 assert.equal(await post(a.httpPort, '/v1/metrics', metricsProto('tempo.metric').bytes), 200);
                 assert.equal(await post(a.httpPort, '/v1/logs', logsProto('tempo log').bytes), 200);
                 await eventually(() => tempo.calls.length >= 3, S(15000), 'three Export calls at the backend');
                 // Stopped, A has sent all it will ever send: nothing more can arrive.
                 await a.stop();
                 const bySignal = Object.fromEntries(tempo.calls.map((c) => [c.signal, c]));
                 assert.equal(tempo.calls.length, 3, 'one call per signal');
                 for (const [signal, path] of Object.entries(EXPORT_PATH)) {
                     const c = bySignal[signal];
                     assert.ok(c, `a ${signal} call arrived`);
                     assert.equal(c.path, path, `${signal}: method path`);
                     assert.equal(c.metadata['x-scope-orgid'], 'tenant-42', `${signal}: X-Scope-OrgID metadata`);
                     assert.equal(c.metadata['x-extra-header'], 'extra value', `${signal}: X-Extra-Header metadata`);
                     const left = c.deadline - c.t;
                     assert.ok(left > 3000 && left <= 7100, `${signal}: deadline ${left} ms after arrival, timeout 7s`);
                 }
                 assert.deepEqual(spanNamesOfRequest(bySignal.traces.body), ['tempo.span'], 'the span in the request');
                 assert.ok(bySignal.metrics.body.includes(Buffer.from('tempo.metric')), 'the metric in the request');
                 assert.ok(bySignal.logs.body.includes(Buffer.from('tempo log')), 'the log record in the request');
             });
         });

    test('otlp: an unchanged request reaches the backend byte for byte (U+0000 in strings, unknown fields)',
         { timeout: S(60000) }, async (t) => {
             const tempo = await startGrpcBackend();
             t.after(() => tempo.close());
             const a = await startCollector({ yaml: relayYaml('otlp', { endpoint: tempo.address, tls: { insecure: true } }) });
             t.after(() => a.kill());
             await withCollectors({ A: a }, async () => {
                 // Strings with U+0000 (protobuf-c would cut them if it decoded them), an
                 // attribute key and value with one, and a field no OTLP version defines.
                 const extra = Buffer.concat([
                     fMsg(9, fString(1, 'k\u0000ey'), fMsg(2, fString(1, 'va\u0000lue'))),
                     fVarint(1000, 42),
                 ]);
                 const sent = tracesProto('nul\u0000name', { spanExtra: extra }).bytes;
                 assert.equal(await post(a.httpPort, '/v1/traces', sent), 200);
                 await eventually(() => tempo.calls.length >= 1, S(15000), 'the Export call at the backend');
                 await a.stop();
                 assert.equal(tempo.calls.length, 1, 'one call');
                 assert.ok(tempo.calls[0].body.equals(sent),
                           `the backend got the ${sent.length} bytes sent (got ${tempo.calls[0].body.length})`);
                 assert.deepEqual(spanNamesOfRequest(tempo.calls[0].body), ['nul\u0000name']);
             });
         });

    test('otlp: gzip by default, none when configured (the gRPC wire as seen by a bare HTTP/2 server)',
         { timeout: S(60000) }, async (t) => {
             const wire = await startRawH2Backend();
             t.after(() => wire.close());
             for (const compression of [undefined, 'none']) {
                 const cfg = { endpoint: wire.address, tls: { insecure: true }, timeout: '9s' };
                 if (compression) {
                     cfg.compression = compression;
                 }
                 const a = await startCollector({ yaml: relayYaml('otlp', cfg) });
                 t.after(() => a.kill());
                 await withCollectors({ A: a }, async () => {
                     const before = wire.calls.length;
                     // Large and repetitive, so that gzip pays: gRPC sends small messages uncompressed.
                     await sendSpan(a, `wire.${compression ?? 'default'}`, { padBytes: 20000 });
                     await eventually(() => wire.calls.length > before, S(15000), 'the call at the backend');
                     const call = wire.calls[before];
                     const what = `compression ${compression ?? '(default)'}`;
                     assert.equal(call.headers[':path'], EXPORT_PATH.traces, `${what}: :path`);
                     assert.equal(call.headers['content-type'], 'application/grpc', `${what}: content-type`);
                     const m = /^(\d+)([HMSmun])$/.exec(call.headers['grpc-timeout'] ?? '');
                     assert.ok(m, `${what}: grpc-timeout header ${call.headers['grpc-timeout']}`);
                     const unitMs = { H: 3600000, M: 60000, S: 1000, m: 1, u: 0.001, n: 0.000001 }[m[2]];
                     const ms = Number(m[1]) * unitMs;
                     // gRPC core rounds the encoded timeout up (9010m has been seen for 9 s).
                     assert.ok(ms > 5000 && ms <= 9100, `${what}: grpc-timeout ${call.headers['grpc-timeout']}, timeout 9s`);
                     assert.equal(call.frames.length, 1, `${what}: one message`);
                     const f = call.frames[0];
                     if (compression === 'none') {
                         assert.ok(!call.headers['grpc-encoding'] || call.headers['grpc-encoding'] === 'identity',
                                   `${what}: grpc-encoding ${call.headers['grpc-encoding']}`);
                         assert.equal(f.compressed, 0, `${what}: the message is not compressed`);
                         assert.equal(spanNamesOfRequest(f.payload)[0], 'wire.none');
                     } else {
                         assert.equal(call.headers['grpc-encoding'], 'gzip', `${what}: grpc-encoding`);
                         assert.equal(f.compressed, 1, `${what}: the message's compressed flag`);
                         const { gunzipSync } = await import('node:zlib');
                         const plain = gunzipSync(f.payload);
                         assert.ok(f.payload.length < plain.length / 5, `${what}: ${f.payload.length} bytes on the wire ` +
                                   `for ${plain.length}`);
                         assert.equal(spanNamesOfRequest(plain)[0], 'wire.default');
                     }
                     await a.stop();
                 });
             }
         });

    test('otlphttp: signal paths, traces_endpoint used as given, headers, gzip, content-type', { timeout: S(60000) },
         async (t) => {
             const be = await startHttpBackend();
             t.after(() => be.close());
             const a = await startCollector({
                 yaml: relayYaml('otlphttp', {
                     endpoint: `${be.url}/base`, traces_endpoint: `${be.url}/custom/traces/path`,
                     headers: { 'X-Scope-OrgID': 'tenant-7', Authorization: 'Bearer abc' },
                 }),
             });
             t.after(() => a.kill());
             await withCollectors({ A: a }, async () => {
                 await sendSpan(a, 'http.span');
                 assert.equal(await post(a.httpPort, '/v1/metrics', metricsProto('http.metric').bytes), 200);
                 assert.equal(await post(a.httpPort, '/v1/logs', logsProto('http log').bytes), 200);
                 await eventually(() => be.requests.length >= 3, S(15000), 'three requests at the backend');
                 // Stopped, A has sent all it will ever send: nothing more can arrive.
                 await a.stop();
                 assert.equal(be.requests.length, 3, 'one request per signal');
                 assert.deepEqual(be.requests.map((r) => r.path).sort(),
                                  ['/base/v1/logs', '/base/v1/metrics', '/custom/traces/path']);
                 for (const r of be.requests) {
                     assert.equal(r.method, 'POST', `${r.path}: method`);
                     assert.equal(r.headers['content-type'], 'application/x-protobuf', `${r.path}: content-type`);
                     assert.equal(r.headers['content-encoding'], 'gzip', `${r.path}: content-encoding`);
                     assert.equal(r.headers['x-scope-orgid'], 'tenant-7', `${r.path}: X-Scope-OrgID`);
                     assert.equal(r.headers.authorization, 'Bearer abc', `${r.path}: Authorization`);
                 }
                 const tr = be.requests.find((r) => r.path === '/custom/traces/path');
                 assert.deepEqual(spanNamesOfHttpBody(tr.headers, tr.body), ['http.span']);
             });
         });

    for (const kind of ['otlp', 'otlphttp']) {
        test(`${kind}: a send that outlives timeout is abandoned and retried`, { timeout: S(60000) }, async (t) => {
            // The backend answers nothing to the first attempt; the second gets success.
            const stall = gate();
            t.after(() => stall.open());
            const decide = (n) => (n === 1 ? stall.promise.then(() => ({ ok: true })) : { ok: true });
            let count = 0;
            const be = kind === 'otlp' ? await startGrpcBackend({ decide: () => decide(++count) })
                                       : await startHttpBackend({ decide: () => decide(++count) });
            t.after(() => be.close());
            const target = kind === 'otlp' ? { endpoint: be.address, tls: { insecure: true } } : { endpoint: be.url };
            const a = await startCollector({ yaml: relayYaml(kind, { ...target, timeout: '1s', retry_on_failure: FAST_RETRY }) });
            t.after(() => a.kill());
            await withCollectors({ A: a }, async () => {
                await sendSpan(a, `timeout.${kind}`);
                const list = kind === 'otlp' ? be.calls : be.requests;
                await eventually(() => list.length >= 2, S(15000), 'a second attempt after the timeout');
                const gap = list[1].t - list[0].t;
                assert.ok(gap >= 900 && gap < S(6000), `second attempt ${gap} ms after the first (timeout 1s)`);
                // Stopping drains A: a retry still waiting would be made now (its last attempt).
                await a.stop();
                assert.equal(list.length, 2, 'the second attempt succeeded: no third');
            });
        });
    }
});

// ---------------------------------------------------------------------------------------------
// Failures

/** google.rpc.Status{code, message, details: [Any(google.rpc.RetryInfo{retry_delay})]} */
function statusWithRetryInfo(code, message, delaySeconds) {
    const retryInfo = fMsg(1, fVarint(1, delaySeconds)); // RetryInfo.retry_delay = Duration{seconds}
    const any = Buffer.concat([fString(1, 'type.googleapis.com/google.rpc.RetryInfo'), fBytes(2, retryInfo)]);
    return Buffer.concat([fVarint(1, code), fString(2, message), fBytes(3, any)]);
}

describe('failures at the backend', () => {
    for (const kind of ['otlp', 'otlphttp']) {
        test(`${kind}: B down for seconds, then up on the same port: everything accepted arrives, none twice`,
             { timeout: S(120000) }, async (t) => {
                 const [grpcPort, httpPort] = await freePorts(2);
                 const target = kind === 'otlp' ? { endpoint: `127.0.0.1:${grpcPort}`, tls: { insecure: true } }
                                                : { endpoint: `http://127.0.0.1:${httpPort}` };
                 const a = await startCollector({ yaml: relayYaml(kind, { ...target, timeout: '5s', retry_on_failure: FAST_RETRY }) });
                 t.after(() => a.kill());
                 let b = null;
                 t.after(() => b?.kill());
                 await withCollectors({ A: a, get B() { return b; } }, async () => {
                     const names = [];
                     const t0 = Date.now();
                     // About 4 s of data while nothing listens on B's ports.
                     for (let i = 0; Date.now() - t0 < 4000; i++) {
                         const n = `outage.${kind}.${i}`;
                         await sendSpan(a, n);
                         names.push(n);
                         await sleep(100);
                     }
                     assert.match(a.stderr, /retry/i, 'A logs that it will retry');
                     b = await startCollector({ yaml: sinkYaml(), grpcPort, httpPort });
                     const got = await waitDelivered(b, names, S(60000), 'every span in B after B came up');
                     // A stopped has sent all it will ever send, so anything sent twice is in B now.
                     await a.stop(S(30000));
                     await b.stop();
                     assertOnce(spanNamesIn(b), names, `${names.length} spans sent during the outage`);
                     assert.ok(got.length >= names.length);
                 });
             });
    }

    test('otlphttp: 503 with Retry-After: 2 makes A wait 2 s before the retry', { timeout: S(60000) }, async (t) => {
        const b = await startCollector({ yaml: sinkYaml() });
        t.after(() => b.kill());
        let n = 0;
        const front = await startHttpBackend({
            decide: () => (++n === 1 ? { status: 503, headers: { 'Retry-After': '2' }, body: 'busy' } : { forward: b.httpUrl }),
        });
        t.after(() => front.close());
        const a = await startCollector({ yaml: relayYaml('otlphttp', { endpoint: front.url, retry_on_failure: FAST_RETRY }) });
        t.after(() => a.kill());
        await withCollectors({ A: a, B: b }, async () => {
            await sendSpan(a, 'retry-after.span');
            await waitDelivered(b, ['retry-after.span'], S(20000), 'the span in B');
            assert.equal(front.requests.length, 2, 'the 503 and one retry');
            const gap = front.requests[1].t - front.requests[0].t;
            assert.ok(gap >= 1900, `the retry came ${gap} ms after the 503 with Retry-After: 2 (initial_interval 100ms)`);
            assert.ok(gap < S(8000), `the retry came ${gap} ms after the 503 with Retry-After: 2`);
            assert.deepEqual(front.requests[1].body, front.requests[0].body, 'the retry sends the same request');
            await a.stop();
            await b.stop();
            assertOnce(spanNamesIn(b), ['retry-after.span'], 'B');
        });
    });

    test('otlphttp: 429, 502 and 504 are retried too (OTLP/HTTP spec)', { timeout: S(60000) }, async (t) => {
        const b = await startCollector({ yaml: sinkYaml() });
        t.after(() => b.kill());
        const answers = [429, 502, 504];
        let n = 0;
        const front = await startHttpBackend({
            decide: () => (n < answers.length ? { status: answers[n++], body: 'not now' } : { forward: b.httpUrl }),
        });
        t.after(() => front.close());
        const a = await startCollector({ yaml: relayYaml('otlphttp', { endpoint: front.url, retry_on_failure: FAST_RETRY }) });
        t.after(() => a.kill());
        await withCollectors({ A: a, B: b }, async () => {
            await sendSpan(a, 'retryable.span');
            await waitDelivered(b, ['retryable.span'], S(20000), 'the span in B after 429, 502, 504');
            assert.equal(front.requests.length, 4, 'three refusals and the success');
            await a.stop();
            await b.stop();
            assertOnce(spanNamesIn(b), ['retryable.span'], 'B');
        });
    });

    test('otlp: RESOURCE_EXHAUSTED with RetryInfo of 2 s makes A wait 2 s before the retry', { timeout: S(60000) },
         async (t) => {
             const b = await startCollector({ yaml: sinkYaml() });
             t.after(() => b.kill());
             let n = 0;
             const be = await startGrpcBackend({
                 decide: () => (++n === 1
                     ? { code: grpc.status.RESOURCE_EXHAUSTED, details: 'slow down',
                         trailers: { 'grpc-status-details-bin': statusWithRetryInfo(8, 'slow down', 2) } }
                     : { forward: b.grpcAddress }),
             });
             t.after(() => be.close());
             const a = await startCollector({
                 yaml: relayYaml('otlp', { endpoint: be.address, tls: { insecure: true }, retry_on_failure: FAST_RETRY }),
             });
             t.after(() => a.kill());
             await withCollectors({ A: a, B: b }, async () => {
                 await sendSpan(a, 'retryinfo.span');
                 await waitDelivered(b, ['retryinfo.span'], S(20000), 'the span in B');
                 assert.equal(be.calls.length, 2, 'the refused call and one retry');
                 const gap = be.calls[1].t - be.calls[0].t;
                 assert.ok(gap >= 1900 && gap < S(8000), `the retry came ${gap} ms after RetryInfo{retry_delay: 2s}`);
                 await a.stop();
                 await b.stop();
                 assertOnce(spanNamesIn(b), ['retryinfo.span'], 'B');
             });
         });

    const PERMANENT = {
        otlp: { what: 'INVALID_ARGUMENT', answer: { code: grpc.status.INVALID_ARGUMENT, details: 'bad data' } },
        otlphttp: { what: '400', answer: { status: 400, headers: { 'content-type': 'text/plain' }, body: 'bad data' } },
    };
    for (const kind of ['otlp', 'otlphttp']) {
        test(`${kind}: ${PERMANENT[kind].what} drops that batch once, with a log line; later data flows`,
             { timeout: S(60000) }, async (t) => {
                 const b = await startCollector({ yaml: sinkYaml() });
                 t.after(() => b.kill());
                 const isPoison = (names) => names.some((x) => x.startsWith('poison'));
                 let be;
                 if (kind === 'otlp') {
                     be = await startGrpcBackend({
                         decide: (c) => (isPoison(spanNamesOfRequest(c.body)) ? PERMANENT.otlp.answer
                                                                                : { forward: b.grpcAddress }),
                     });
                 } else {
                     be = await startHttpBackend({
                         decide: (r) => (isPoison(spanNamesOfHttpBody(r.headers, r.body)) ? PERMANENT.otlphttp.answer
                                                                                         : { forward: b.httpUrl }),
                     });
                 }
                 t.after(() => be.close());
                 const target = kind === 'otlp' ? { endpoint: be.address, tls: { insecure: true } } : { endpoint: be.url };
                 const a = await startCollector({ yaml: relayYaml(kind, { ...target, retry_on_failure: FAST_RETRY }) });
                 t.after(() => a.kill());
                 await withCollectors({ A: a, B: b }, async () => {
                     const list = kind === 'otlp' ? be.calls : be.requests;
                     await sendSpan(a, 'poison.span');
                     await eventually(() => list.length >= 1, S(15000), 'the poison request at the backend');
                     // Once A has dropped the request, no retry of it can follow.
                     await eventually(() => /dropping 1 span/i.test(a.stderr), S(15000), 'A logs that it dropped the span');
                     assert.equal(list.length, 1, `the permanent failure is not retried (${list.length} attempts)`);
                     await sendSpan(a, 'after.span');
                     await waitDelivered(b, ['after.span'], S(15000), 'later data in B');
                     await a.stop();
                     await b.stop();
                     assert.deepEqual(spanNamesIn(b), ['after.span'], 'B got the later span only');
                 });
             });
    }

    test('otlp: RESOURCE_EXHAUSTED without RetryInfo is permanent (OTLP spec): dropped once', { timeout: S(60000) },
         async (t) => {
             const be = await startGrpcBackend({ decide: () => ({ code: grpc.status.RESOURCE_EXHAUSTED, details: 'too big' }) });
             t.after(() => be.close());
             const a = await startCollector({
                 yaml: relayYaml('otlp', { endpoint: be.address, tls: { insecure: true }, retry_on_failure: FAST_RETRY }),
             });
             t.after(() => a.kill());
             await withCollectors({ A: a }, async () => {
                 await sendSpan(a, 'exhausted.span');
                 await eventually(() => be.calls.length >= 1, S(15000), 'the call at the backend');
                 // Once A has dropped the request, no retry of it can follow.
                 await eventually(() => /dropping 1 span/i.test(a.stderr), S(15000), 'A logs that it dropped the span');
                 assert.equal(be.calls.length, 1, `attempts: ${be.calls.length}`);
                 await a.stop();
             });
         });
});

// ---------------------------------------------------------------------------------------------
// Backpressure

describe('backpressure', () => {
    for (const kind of ['otlp', 'otlphttp']) {
        test(`${kind}: a full sending queue makes the receiver refuse with retryable errors; memory stays bounded; ` +
             'what was accepted is delivered when the backend recovers', { timeout: S(150000) }, async (t) => {
            const b = await startCollector({ yaml: sinkYaml() });
            t.after(() => b.kill());
            // The backend holds every request until the gate opens, then forwards to B.
            const stall = gate();
            t.after(() => stall.open());
            const be = kind === 'otlp'
                ? await startGrpcBackend({ decide: () => stall.promise.then(() => ({ forward: b.grpcAddress })) })
                : await startHttpBackend({ decide: () => stall.promise.then(() => ({ forward: b.httpUrl })) });
            t.after(() => be.close());
            const target = kind === 'otlp' ? { endpoint: be.address, tls: { insecure: true } } : { endpoint: be.url };
            // No batch processor: the receiver hands each request straight to the exporter's queue.
            const a = await startCollector({
                yaml: relayYaml(kind, {
                    ...target, timeout: '120s', retry_on_failure: FAST_RETRY,
                    sending_queue: { enabled: true, queue_size: 2, num_consumers: 1 },
                }, { batch: false }),
            });
            t.after(() => a.kill());
            await withCollectors({ A: a, B: b }, async () => {
                const { accepted, refused, otherFailures, maxRss } = await driveLoad(t, a, {
                    workers: 6, ms: 4000, padBytes: 50000, viaGrpc: (w) => w % 3 === 2, prefix: `bp.${kind}`,
                });
                const acceptedWhileStalled = accepted.length;
                assert.deepEqual(otherFailures.slice(0, 5), [], 'the only failures are retryable refusals');
                assert.ok(refused.some((r) => r.via === 'http'), 'the HTTP receiver refused some requests (429/503)');
                assert.ok(refused.some((r) => r.via === 'grpc'), 'the gRPC receiver refused some calls (UNAVAILABLE/RESOURCE_EXHAUSTED)');
                // One request in flight plus a queue of two.
                assert.ok(acceptedWhileStalled >= 1 && acceptedWhileStalled <= 3,
                          `A accepted ${acceptedWhileStalled} requests while the backend stalled (1 consumer, queue of 2)`);
                // AddressSanitizer keeps up to 256 MiB of freed memory in quarantine, and valgrind
                // has its own overhead: under them only a loose bound means anything.
                const limitMb = instrumented(a.proc.pid) ? 1024 : 100;
                assert.ok(maxRss > 0 && maxRss < limitMb * 1024,
                          `A's RSS peaked at ${maxRss} KiB (bound ${limitMb} MiB) while ` +
                          `${refused.length + accepted.length} requests of 50 KB came in`);

                // The backend recovers: what A accepted arrives, and A accepts again.
                stall.open();
                for (let i = 0; i < 5; i++) {
                    const name = `bp.${kind}.after.${i}`;
                    await eventually(async () => (await post(a.httpPort, '/v1/traces', tracesProto(name).bytes)) === 200,
                                     S(20000), `A accepting ${name} after the backend recovered`);
                    accepted.push(name);
                }
                await waitDelivered(b, accepted, S(60000), 'every accepted span in B');
                // A stopped has sent all it will ever send, so anything sent twice is in B now.
                await a.stop(S(30000));
                await b.stop();
                const got = spanNamesIn(b);
                assertOnce(got, accepted, `${accepted.length} accepted spans`);
                const refusedNames = new Set(refused.map((r) => r.name));
                assert.deepEqual(got.filter((n) => refusedNames.has(n)), [], 'no refused span was delivered');
            });
        });
    }
});

describe('intake backpressure', () => {
    // The default queue (1000 requests) would take gigabytes of 400 KB requests; the intake
    // limit (16 MiB undelivered) stops A first. Clients are held for the hold time (2 s), then
    // refused with retryable errors: nobody waits for a client timeout.
    test('a stalled backend: A takes about 16 MiB, then holds and refuses with retryable errors, never ' +
         'a client timeout; memory stays bounded; what was accepted arrives once', { timeout: S(150000) }, async (t) => {
        const b = await startCollector({ yaml: sinkYaml() });
        t.after(() => b.kill());
        const stall = gate();
        t.after(() => stall.open());
        const be = await startGrpcBackend({ decide: () => stall.promise.then(() => ({ forward: b.grpcAddress })) });
        t.after(() => be.close());
        const a = await startCollector({
            yaml: relayYaml('otlp', {
                endpoint: be.address, tls: { insecure: true }, timeout: '120s', retry_on_failure: FAST_RETRY,
            }, { batch: false }),
        });
        t.after(() => a.kill());
        await withCollectors({ A: a, B: b }, async () => {
            const { accepted, refused, otherFailures, maxRss } = await driveLoad(t, a, {
                workers: 4, ms: S(6000), padBytes: 400000, viaGrpc: (w) => w % 2 === 1, prefix: 'ib',
            });
            const acceptedWhileStalled = accepted.length;
            assert.deepEqual(otherFailures.slice(0, 5), [], 'the only failures are retryable refusals');
            assert.ok(refused.some((r) => r.via === 'http' && r.code === 503), 'HTTP requests refused with 503');
            assert.ok(refused.some((r) => r.via === 'grpc' && r.code === grpc.status.UNAVAILABLE),
                      'gRPC calls refused with UNAVAILABLE');
            // 16 MiB of 400 KB requests is about 42; the queue (1000) never filled.
            assert.ok(acceptedWhileStalled >= 20 && acceptedWhileStalled <= 80,
                      `A accepted ${acceptedWhileStalled} requests of 400 KB while the backend stalled`);
            assert.match(a.stderr, /intake: refusing data/, 'one warning says why data is refused');
            const limitMb = instrumented(a.proc.pid) ? 1024 : 100;
            assert.ok(maxRss > 0 && maxRss < limitMb * 1024, `A's RSS peaked at ${maxRss} KiB (bound ${limitMb} MiB)`);

            stall.open();
            for (let i = 0; i < 3; i++) {
                const name = `ib.after.${i}`;
                await eventually(async () => (await post(a.httpPort, '/v1/traces', tracesProto(name).bytes)) === 200,
                                 S(30000), `A accepting ${name} after the backend recovered`);
                accepted.push(name);
            }
            await waitDelivered(b, accepted, S(60000), 'every accepted span in B');
            await a.stop(S(30000));
            await b.stop();
            const got = spanNamesIn(b);
            assertOnce(got, accepted, `${accepted.length} accepted spans`);
            const refusedNames = new Set(refused.map((r) => r.name));
            assert.deepEqual(got.filter((n) => refusedNames.has(n)), [], 'no refused span was delivered');
            assert.match(a.stderr, /intake: taking data again/);
        });
    });
});

// ---------------------------------------------------------------------------------------------
// Shutdown

describe('shutdown', () => {
    for (const kind of ['otlp', 'otlphttp']) {
        test(`${kind}: SIGTERM drains the queue to a slow but live backend before exit`, { timeout: S(90000) }, async (t) => {
            const b = await startCollector({ yaml: sinkYaml() });
            t.after(() => b.kill());
            const DELAY = 600;
            const be = kind === 'otlp'
                ? await startGrpcBackend({ decide: () => sleep(DELAY).then(() => ({ forward: b.grpcAddress })) })
                : await startHttpBackend({ decide: () => sleep(DELAY).then(() => ({ forward: b.httpUrl })) });
            t.after(() => be.close());
            const target = kind === 'otlp' ? { endpoint: be.address, tls: { insecure: true } } : { endpoint: be.url };
            const a = await startCollector({
                yaml: relayYaml(kind, {
                    ...target, timeout: '10s', retry_on_failure: FAST_RETRY,
                    sending_queue: { enabled: true, queue_size: 100, num_consumers: 1 },
                }, { batch: false }),
            });
            t.after(() => a.kill());
            await withCollectors({ A: a, B: b }, async () => {
                const names = [];
                for (let i = 0; i < 10; i++) {
                    names.push(`drain.${kind}.${i}`);
                    await sendSpan(a, names[i]);
                }
                const deliveredBefore = (spanNamesIn(b) ?? []).length;
                assert.ok(deliveredBefore < names.length - 3,
                          `the queue holds data at SIGTERM (${deliveredBefore} of ${names.length} already in B)`);
                const res = await a.terminate(S(30000));
                t.diagnostic(`${deliveredBefore} of ${names.length} in B at SIGTERM; A exited after ${res.ms} ms`);
                assert.equal(res.code, 0, `A's exit code after SIGTERM (signal ${res.signal})`);
                // 10 sends of 0.6 s each, one at a time: about 6 s.
                assert.ok(res.ms < S(20000), `A took ${res.ms} ms to drain and exit`);
                await b.stop();
                assertOnce(spanNamesIn(b), names, 'B after A drained');
            });
        });

        // otelcol's retry sender stops waiting for the next attempt when the exporter shuts down
        // (exporterhelper retry_sender.go: `case <-rs.stopCh: return experr.NewShutdownErr(err)`),
        // so a dead backend does not hold the collector's exit: the data is dropped and logged.
        test(`${kind}: SIGTERM with the backend unreachable stops retrying and exits 0 promptly`, { timeout: S(90000) },
             async (t) => {
                 const [deadPort] = await freePorts(1);
                 const target = kind === 'otlp' ? { endpoint: `127.0.0.1:${deadPort}`, tls: { insecure: true } }
                                                : { endpoint: `http://127.0.0.1:${deadPort}` };
                 const a = await startCollector({ yaml: relayYaml(kind, { ...target, retry_on_failure: FAST_RETRY }) });
                 t.after(() => a.kill());
                 await withCollectors({ A: a }, async () => {
                     await sendSpan(a, `undeliverable.${kind}`);
                     await eventually(() => /will retry/.test(a.stderr), S(10000), 'a failed attempt in A\'s log');
                     const res = await a.terminate(S(40000));
                     t.diagnostic(`A exited with code ${res.code} after ${res.ms} ms`);
                     assert.ok(res.ms < S(10000), `A took ${res.ms} ms to exit after SIGTERM with the backend down`);
                     assert.equal(res.code, 0, 'A\'s exit code after SIGTERM with the backend down');
                     assert.match(a.stderr, /dropping 1 span/i, 'A logs that the span was dropped');
                 });
             });
    }
});
