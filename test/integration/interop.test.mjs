// interop.test.mjs: the official OpenTelemetry JS SDK exports traces, metrics and logs to the
// collector over every transport (gRPC, HTTP protobuf, HTTP JSON), without and with gzip. After
// a graceful shutdown the file exporter's output must hold exactly what the SDK sent, field by
// field: the reference is the SDK's own data (its in-memory exporters and its OTLP JSON
// serializer), plus values computed here from what the test recorded.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import http from 'node:http';
import test from 'node:test';

import { flattenLogs, flattenMetrics, flattenSpans, requireJs, startCollector } from '../js/harness.mjs';
import {
    fBytes, fDouble, fFixed32, fFixed64, fKeyValue, fMsg, fPackedDouble, fPackedFixed64, fSfixed64, fString,
    fVarint, varint,
} from '../js/otlp_build.mjs';
import { attrKey, canonical, hrToNanos, parseJsonBytes } from '../js/otlp_json.mjs';

const api = requireJs('@opentelemetry/api');
const apiLogs = requireJs('@opentelemetry/api-logs');
const { ExportResultCode } = requireJs('@opentelemetry/core');
const { resourceFromAttributes } = requireJs('@opentelemetry/resources');
const { BasicTracerProvider, InMemorySpanExporter, SimpleSpanProcessor } =
    requireJs('@opentelemetry/sdk-trace-base');
const { AggregationType, MeterProvider, MetricReader } = requireJs('@opentelemetry/sdk-metrics');
const { LoggerProvider, InMemoryLogRecordExporter, SimpleLogRecordProcessor } =
    requireJs('@opentelemetry/sdk-logs');
const { JsonTraceSerializer, JsonMetricsSerializer, JsonLogsSerializer } =
    requireJs('@opentelemetry/otlp-transformer');

// The exporters must talk to the collector of the test, whatever the environment says.
for (const k of Object.keys(process.env)) {
    if (k.startsWith('OTEL_')) {
        delete process.env[k];
    }
}
api.diag.setLogger(new api.DiagConsoleLogger(), api.DiagLogLevel.WARN);

const PKG = { grpc: 'grpc', 'http/protobuf': 'proto', 'http/json': 'http' };

// Attribute values of every type the API allows, with edge cases.
const EVERY_TYPE = {
    'attr.string': 'value',
    'attr.empty_string': '',
    'attr.unicode': 'h\u00e9llo \u2713 \u65e5\u672c \u{1F600}',
    'attr.escapes': 'quote" backslash\\ newline\n tab\t ctl\u0001 esc\u001b del\u007f',
    'attr.bool_true': true,
    'attr.bool_false': false,
    'attr.int': 42,
    'attr.int_zero': 0,
    'attr.int_negative': -7,
    'attr.int_max_safe': Number.MAX_SAFE_INTEGER,
    'attr.int_min_safe': Number.MIN_SAFE_INTEGER,
    'attr.int_2_60': 2 ** 60,
    'attr.double': 1.5,
    'attr.double_tenth': 0.1,
    'attr.double_negative': -2.5e-300,
    'attr.double_large': 1.5e15 + 0.5,
    'attr.double_min_subnormal': 5e-324,
    'attr.array_string': ['a', '', 'c'],
    'attr.array_bool': [true, false, true],
    'attr.array_int': [1, -2, 3, 0],
    'attr.array_double': [1.5, -2.25, 1e-10],
    'attr.array_empty': [],
    'attr.long_string': 'x'.repeat(10000),
};

/** Runs comparisons and collects every failure, so that one run reports all differences. */
class Mismatches {
    constructor() {
        this.list = [];
    }

    check(fn) {
        try {
            fn();
        } catch (e) {
            this.list.push(e.message.length > 4000 ? `${e.message.slice(0, 4000)}...` : e.message);
        }
    }

    done(what) {
        if (this.list.length > 0) {
            const shown = this.list.slice(0, 12).join('\n\n');
            assert.fail(`${this.list.length} ${what} differ from what was sent:\n\n${shown}`);
        }
    }
}

/** Run an exporter's export() and require SUCCESS. */
function exportWith(exporter, items, what) {
    return new Promise((resolve, reject) => {
        exporter.export(items, (res) => {
            if (res.code === ExportResultCode.SUCCESS) {
                resolve();
            } else {
                reject(new Error(`${what}: the SDK exporter reported failure: ${res.error}`));
            }
        });
    });
}

class ManualReader extends MetricReader {
    async onShutdown() {}
    async onForceFlush() {}
}

/** Spans made with the SDK: parent/child, every kind, statuses, events, links, trace state. */
async function makeSpans(resource) {
    const mem = new InMemorySpanExporter();
    const provider = new BasicTracerProvider({ resource, spanProcessors: [new SimpleSpanProcessor(mem)] });
    const tracer = provider.getTracer('interop-traces', '1.2.3',
                                      { schemaUrl: 'https://opentelemetry.io/schemas/1.26.0' });
    const root = tracer.startSpan('root', {
        kind: api.SpanKind.SERVER,
        attributes: EVERY_TYPE,
        startTime: [1700000000, 123456789],
    });
    const rootCtx = api.trace.setSpan(api.ROOT_CONTEXT, root);
    root.addEvent('event.with.attributes', { 'ev.string': 's', 'ev.int': 1, 'ev.double': 0.5,
                                             'ev.bool': true, 'ev.array': ['p', 'q'] },
                  [1700000000, 200000001]);
    root.addEvent('event.without.attributes');
    root.setStatus({ code: api.SpanStatusCode.OK });

    const kinds = ['INTERNAL', 'SERVER', 'CLIENT', 'PRODUCER', 'CONSUMER'];
    for (const kind of kinds) {
        const child = tracer.startSpan(`child.${kind.toLowerCase()}`,
                                       { kind: api.SpanKind[kind], attributes: { 'child.kind': kind } },
                                       rootCtx);
        if (kind === 'CLIENT') {
            const grandchild = tracer.startSpan('grandchild', {}, api.trace.setSpan(rootCtx, child));
            grandchild.setStatus({ code: api.SpanStatusCode.ERROR, message: 'it failed: \u00e9\n' });
            grandchild.recordException(new Error('boom'));
            grandchild.end();
        }
        child.end();
    }

    const linked = {
        traceId: '0af7651916cd43dd8448eb211c80319c',
        spanId: 'b7ad6b7169203331',
        traceFlags: api.TraceFlags.SAMPLED,
        traceState: api.createTraceState('vendor1=value1,vendor2=value2'),
        isRemote: true,
    };
    const withLinks = tracer.startSpan('with.links', {
        kind: api.SpanKind.CONSUMER,
        startTime: [1700000001, 1],
        links: [
            { context: linked, attributes: { 'link.string': 'l', 'link.int': 2, 'link.bool': false } },
            { context: { ...linked, spanId: '00f067aa0ba902b7', traceState: undefined,
                         traceFlags: api.TraceFlags.NONE } },
        ],
    }, rootCtx);
    withLinks.setStatus({ code: api.SpanStatusCode.ERROR });
    withLinks.end([1700000001, 999999999]);

    // A span whose parent is remote and carries trace state: traceState and the is-remote flags
    // bits must survive.
    const remoteParentCtx = api.trace.setSpanContext(api.ROOT_CONTEXT, linked);
    tracer.startSpan('remote.child', { kind: api.SpanKind.SERVER }, remoteParentCtx).end();

    // Enough plain spans that batching has something to do.
    for (let i = 0; i < 40; i++) {
        tracer.startSpan(`bulk.${i}`, { attributes: { 'bulk.i': i } }, rootCtx).end();
    }
    root.end([1700000002, 5]);
    await provider.forceFlush();
    const spans = mem.getFinishedSpans();
    await provider.shutdown();
    return spans;
}

// Histogram inputs and the bucket counts they must give with these boundaries.
const HIST_BOUNDS = [0, 10, 100, 1000];
const HIST_VALUES = [0, 5, 15, 15, 150, 5000, 7.5];

function expectedHistogram(values, bounds) {
    const counts = new Array(bounds.length + 1).fill(0);
    for (const v of values) {
        let i = bounds.findIndex((b) => v <= b);
        if (i < 0) {
            i = bounds.length;
        }
        counts[i]++;
    }
    return {
        count: String(values.length),
        sum: values.reduce((a, b) => a + b, 0),
        min: Math.min(...values),
        max: Math.max(...values),
        bucketCounts: counts.map(String),
        explicitBounds: bounds,
    };
}

/** Metrics made with the SDK and collected once. */
async function makeMetrics(resource) {
    const reader = new ManualReader();
    const provider = new MeterProvider({
        resource,
        readers: [reader],
        views: [{ instrumentName: 'interop.exp_latency',
                  aggregation: { type: AggregationType.EXPONENTIAL_HISTOGRAM } }],
    });
    const meter = provider.getMeter('interop-metrics', '4.5.6');
    const a = { 'http.method': 'GET', 'http.status_code': 200 };
    const b = { 'http.method': 'POST', 'http.status_code': 500, ok: false, ratio: 0.5 };

    const counter = meter.createCounter('interop.requests', { description: 'requests served', unit: '{request}' });
    counter.add(3, a);
    counter.add(4, a);
    counter.add(2.5, b);
    const intCounter = meter.createCounter('interop.int_requests', { valueType: api.ValueType.INT });
    intCounter.add(5, a);
    intCounter.add(6);
    const updown = meter.createUpDownCounter('interop.queue_depth', { unit: '1' });
    updown.add(5, a);
    updown.add(-2, a);
    updown.add(-4, b);
    const gauge = meter.createObservableGauge('interop.temperature', { unit: 'Cel' });
    gauge.addCallback((obs) => {
        obs.observe(21.5, { room: 'a' });
        obs.observe(-3, { room: 'b' });
    });
    const syncGauge = meter.createGauge('interop.sync_gauge', { valueType: api.ValueType.INT });
    syncGauge.record(17, a);
    const hist = meter.createHistogram('interop.latency', {
        unit: 'ms', advice: { explicitBucketBoundaries: HIST_BOUNDS },
    });
    for (const v of HIST_VALUES) {
        hist.record(v, a);
    }
    hist.record(1, b);
    const expHist = meter.createHistogram('interop.exp_latency', { unit: 's' });
    for (const v of [0, 0.001, 0.5, 2, 2, 300]) {
        expHist.record(v, a);
    }
    const { resourceMetrics, errors } = await reader.collect();
    assert.deepEqual(errors, [], 'the SDK reported errors while collecting');
    await provider.shutdown();
    return {
        resourceMetrics,
        expectedValues: {
            'interop.requests': { [attrKey(kv(a))]: { asDouble: 7 }, [attrKey(kv(b))]: { asDouble: 2.5 } },
            'interop.int_requests': { [attrKey(kv(a))]: { asInt: '5' }, [attrKey([])]: { asInt: '6' } },
            'interop.queue_depth': { [attrKey(kv(a))]: { asDouble: 3 }, [attrKey(kv(b))]: { asDouble: -4 } },
            'interop.temperature': { [attrKey(kv({ room: 'a' }))]: { asDouble: 21.5 },
                                     [attrKey(kv({ room: 'b' }))]: { asDouble: -3 } },
            'interop.sync_gauge': { [attrKey(kv(a))]: { asInt: '17' } },
            'interop.latency': { [attrKey(kv(a))]: expectedHistogram(HIST_VALUES, HIST_BOUNDS),
                                 [attrKey(kv(b))]: expectedHistogram([1], HIST_BOUNDS) },
        },
    };
}

/** OTLP KeyValue list of plain attributes, as the SDK encodes them (integers as intValue). */
function kv(attrs) {
    return Object.entries(attrs).map(([key, v]) => ({ key, value: anyValue(v) }));
}

function anyValue(v) {
    if (typeof v === 'string') {
        return { stringValue: v };
    }
    if (typeof v === 'boolean') {
        return { boolValue: v };
    }
    if (typeof v === 'number') {
        return Number.isInteger(v) ? { intValue: String(v) } : { doubleValue: v };
    }
    throw new Error(`no AnyValue for ${typeof v}`);
}

/** Log records made with the SDK: bodies of several types, severities, trace context. */
async function makeLogs(resource, spanCtx) {
    const mem = new InMemoryLogRecordExporter();
    const provider = new LoggerProvider({ resource, processors: [new SimpleLogRecordProcessor({ exporter: mem })] });
    const logger = provider.getLogger('interop-logs', '0.1.0');
    const inSpan = api.trace.setSpanContext(api.ROOT_CONTEXT, spanCtx);
    logger.emit({
        severityNumber: apiLogs.SeverityNumber.INFO, severityText: 'INFO',
        body: 'a string body', attributes: { 'log.seq': 1, ...EVERY_TYPE }, context: inSpan,
        timestamp: [1700000003, 1], observedTimestamp: [1700000003, 2],
    });
    logger.emit({
        severityNumber: apiLogs.SeverityNumber.ERROR3, severityText: 'error',
        body: { message: 'a map body', count: 3, ratio: 0.75, ok: true, nested: { deep: ['x', 1, false] },
                empty: '' },
        attributes: { 'log.seq': 2, 'log.nested': { inner: 'v', list: [1, 2] } },
        eventName: 'interop.event',
    });
    logger.emit({ severityNumber: apiLogs.SeverityNumber.FATAL4, body: 42, attributes: { 'log.seq': 3 } });
    logger.emit({ body: new Uint8Array([0, 1, 2, 253, 254, 255]), attributes: { 'log.seq': 4 } });
    logger.emit({ severityText: 'only-text', body: '', attributes: { 'log.seq': 5 }, context: inSpan });
    await provider.forceFlush();
    const records = mem.getFinishedLogRecords();
    await provider.shutdown();
    return records;
}

function makeExporters(transport, compression, c) {
    const suffix = PKG[transport];
    const { OTLPTraceExporter } = requireJs(`@opentelemetry/exporter-trace-otlp-${suffix}`);
    const { OTLPMetricExporter } = requireJs(`@opentelemetry/exporter-metrics-otlp-${suffix}`);
    const { OTLPLogExporter } = requireJs(`@opentelemetry/exporter-logs-otlp-${suffix}`);
    const url = (p) => (transport === 'grpc' ? `http://${c.grpcAddress}` : `${c.httpUrl}${p}`);
    const common = { compression, timeoutMillis: 15000 };
    return {
        traces: new OTLPTraceExporter({ ...common, url: url('/v1/traces') }),
        metrics: new OTLPMetricExporter({ ...common, url: url('/v1/metrics') }),
        logs: new OTLPLogExporter({ ...common, url: url('/v1/logs') }),
    };
}

const spanKey = (s) => `${String(s.traceId).toLowerCase()}/${String(s.spanId).toLowerCase()}`;

/** Each SDK span arrived exactly once and equals, field by field, what the SDK serialized. */
function checkTraces(spans, out, transport) {
    const wire = { exactDigits: transport === 'http/json' };
    const expected = flattenSpans(parseJsonBytes(JsonTraceSerializer.serializeRequest(spans), wire).resourceSpans);
    const actual = flattenSpans(out.resourceSpans);
    const byId = new Map();
    for (const a of actual) {
        const k = spanKey(a.item);
        byId.set(k, [...(byId.get(k) ?? []), a]);
    }
    const bad = new Mismatches();
    for (const [k, list] of byId) {
        bad.check(() => assert.equal(list.length, 1, `span ${k} arrived ${list.length} times`));
    }
    bad.check(() => assert.deepEqual([...byId.keys()].sort(), expected.map((e) => spanKey(e.item)).sort(),
                                     'the set of spans in the output differs from the set the SDK exported'));
    for (const e of expected) {
        const a = byId.get(spanKey(e.item))?.[0];
        if (!a) {
            continue;
        }
        const what = `span ${JSON.stringify(e.item.name)} ${spanKey(e.item)}`;
        bad.check(() => assert.deepEqual(canonical(a.item, what, true), canonical(e.item), what));
        bad.check(() => assert.deepEqual(canonical(a.resource, `${what} resource`, true), canonical(e.resource),
                                         `${what}: resource`));
        bad.check(() => assert.deepEqual(canonical(a.scope, `${what} scope`, true), canonical(e.scope),
                                         `${what}: scope`));
        bad.check(() => assert.equal(a.scopeSchemaUrl ?? '', e.scopeSchemaUrl ?? '', `${what}: scope schemaUrl`));
    }
    // The same facts read straight from the SDK's spans, not through its serializer.
    for (const s of spans) {
        const ctx = s.spanContext();
        const a = byId.get(`${ctx.traceId}/${ctx.spanId}`)?.[0]?.item;
        if (!a) {
            continue;
        }
        const what = `span ${JSON.stringify(s.name)}`;
        bad.check(() => {
            assert.equal(a.name, s.name, what);
            assert.equal(a.kind, s.kind + 1, `${what}: kind (SDK SpanKind + 1)`);
            assert.equal(a.parentSpanId ?? '', s.parentSpanContext?.spanId ?? '', `${what}: parentSpanId`);
            assert.equal(a.startTimeUnixNano, hrToNanos(s.startTime), `${what}: startTimeUnixNano`);
            assert.equal(a.endTimeUnixNano, hrToNanos(s.endTime), `${what}: endTimeUnixNano`);
            assert.equal(a.status?.code ?? 0, s.status.code, `${what}: status code`);
            assert.equal(a.status?.message ?? '', s.status.message ?? '', `${what}: status message`);
            assert.equal((a.attributes ?? []).length, Object.keys(s.attributes).length, `${what}: attribute count`);
            assert.equal((a.events ?? []).length, s.events.length, `${what}: event count`);
            assert.equal((a.links ?? []).length, s.links.length, `${what}: link count`);
            assert.equal(a.traceState ?? '', ctx.traceState?.serialize() ?? '', `${what}: traceState`);
        });
    }
    const root = spans.find((s) => s.name === 'root');
    const rootOut = root && byId.get(`${root.spanContext().traceId}/${root.spanContext().spanId}`)?.[0]?.item;
    bad.check(() => {
        if (!root) {
            return;
        }
        assert.ok(rootOut, 'the root span arrived');
        const typeOf = (key) => Object.keys(rootOut.attributes.find((x) => x.key === key).value)[0];
        assert.equal(typeOf('attr.int'), 'intValue');
        assert.equal(typeOf('attr.double'), 'doubleValue');
        assert.equal(typeOf('attr.bool_false'), 'boolValue');
        assert.equal(typeOf('attr.empty_string'), 'stringValue');
        assert.equal(typeOf('attr.array_empty'), 'arrayValue');
        // 2**60 goes out exactly in protobuf; in JSON the SDK writes the JS number's shortest
        // decimal form, 1152921504606847000, and that integer is what the collector must keep.
        assert.equal(rootOut.attributes.find((x) => x.key === 'attr.int_2_60').value.intValue,
                     transport === 'http/json' ? '1152921504606847000' : '1152921504606846976');
    });
    bad.done('spans');
}

function pointKey(p) {
    return attrKey(p.attributes);
}

/** Each metric and data point equals what the SDK serialized, and the values are the ones recorded. */
function checkMetrics(data, out, transport) {
    const wire = { exactDigits: transport === 'http/json' };
    const expected = flattenMetrics(
        parseJsonBytes(JsonMetricsSerializer.serializeRequest(data.resourceMetrics), wire).resourceMetrics);
    const TYPES = ['sum', 'gauge', 'histogram', 'exponentialHistogram', 'summary'];
    const dataOf = (m) => TYPES.filter((t) => t in m);
    const bad = new Mismatches();
    // A batch processor may split one metric's data points over several requests: put the
    // pieces back together (they must agree on everything but the data points).
    const actual = [];
    for (const a of flattenMetrics(out.resourceMetrics)) {
        const prev = actual.find((x) => x.item.name === a.item.name);
        if (!prev) {
            actual.push({ ...a, item: structuredClone(a.item) });
            continue;
        }
        const what = `metric ${a.item.name}, split over several entries`;
        bad.check(() => {
            const [type] = dataOf(prev.item);
            const strip = (m) => ({ ...canonical(m, what, true), [type]: { ...canonical(m[type], what, true), dataPoints: [] } });
            assert.deepEqual(strip(a.item), strip(prev.item), `${what}: the pieces disagree`);
            assert.deepEqual(canonical(a.resource, what, true), canonical(prev.resource, what, true), `${what}: resource`);
            assert.deepEqual(canonical(a.scope, what, true), canonical(prev.scope, what, true), `${what}: scope`);
            prev.item[type].dataPoints.push(...a.item[type].dataPoints);
        });
    }
    bad.check(() => assert.deepEqual(actual.map((a) => a.item.name).sort(), expected.map((e) => e.item.name).sort(),
                                     'the metrics in the output differ from the metrics the SDK exported'));
    for (const e of expected) {
        const a = actual.find((x) => x.item.name === e.item.name);
        if (!a) {
            continue;
        }
        const what = `metric ${e.item.name}`;
        const [type] = dataOf(e.item);
        bad.check(() => {
            assert.deepEqual(dataOf(a.item), [type], `${what}: data type`);
            const sortPoints = (m) => {
                const c = structuredClone(m);
                c[type].dataPoints.sort((x, y) => (pointKey(x) < pointKey(y) ? -1 : 1));
                return c;
            };
            assert.deepEqual(canonical(sortPoints(a.item), what, true), canonical(sortPoints(e.item)), what);
        });
        bad.check(() => assert.deepEqual(canonical(a.resource, `${what} resource`, true), canonical(e.resource),
                                         `${what}: resource`));
        bad.check(() => assert.deepEqual(canonical(a.scope, `${what} scope`, true), canonical(e.scope),
                                         `${what}: scope`));
    }
    for (const [name, points] of Object.entries(data.expectedValues)) {
        bad.check(() => {
            const m = actual.find((x) => x.item.name === name)?.item;
            assert.ok(m, `${name} arrived`);
            const [type] = dataOf(m);
            const got = m[type].dataPoints;
            assert.equal(got.length, Object.keys(points).length, `${name}: number of data points`);
            for (const p of got) {
                const want = points[pointKey(p)];
                assert.ok(want, `${name}: unexpected data point attributes ${pointKey(p)}`);
                const c = canonical(p, name, true);
                for (const [field, value] of Object.entries(want)) {
                    assert.deepEqual(c[field], value, `${name} ${pointKey(p)}: ${field}`);
                }
            }
        });
    }
    bad.done('metrics');
}

/** Each log record arrived exactly once and equals what the SDK serialized. */
function checkLogs(records, spanCtx, out, transport) {
    const wire = { exactDigits: transport === 'http/json' };
    const expected = flattenLogs(parseJsonBytes(JsonLogsSerializer.serializeRequest(records), wire).resourceLogs);
    const actual = flattenLogs(out.resourceLogs);
    const seq = (r) => {
        const a = (r.attributes ?? []).find((x) => x.key === 'log.seq');
        return a ? String(a.value.intValue) : 'none';
    };
    const bad = new Mismatches();
    bad.check(() => assert.deepEqual(actual.map((a) => seq(a.item)).sort(), expected.map((e) => seq(e.item)).sort(),
                                     'the log records in the output differ from those the SDK exported'));
    for (const e of expected) {
        const a = actual.find((x) => seq(x.item) === seq(e.item));
        if (!a) {
            continue;
        }
        const what = `log record ${seq(e.item)}`;
        bad.check(() => assert.deepEqual(canonical(a.item, what, true), canonical(e.item), what));
        bad.check(() => assert.deepEqual(canonical(a.resource, `${what} resource`, true), canonical(e.resource),
                                         `${what}: resource`));
        bad.check(() => assert.deepEqual(canonical(a.scope, `${what} scope`, true), canonical(e.scope),
                                         `${what}: scope`));
    }
    const get = (n) => actual.find((x) => seq(x.item) === n)?.item ?? {};
    bad.check(() => {
        const first = get('1');
        assert.equal(first.traceId, spanCtx.traceId, 'log 1: traceId from the span context');
        assert.equal(first.spanId, spanCtx.spanId, 'log 1: spanId from the span context');
        assert.equal(first.severityNumber, apiLogs.SeverityNumber.INFO, 'log 1: severityNumber');
        assert.deepEqual(first.body, { stringValue: 'a string body' }, 'log 1: body');
        assert.equal(first.timeUnixNano, '1700000003000000001', 'log 1: timeUnixNano');
        assert.equal(first.observedTimeUnixNano, '1700000003000000002', 'log 1: observedTimeUnixNano');
    });
    bad.check(() => {
        const second = get('2');
        assert.equal(second.eventName, 'interop.event', 'log 2: eventName');
        assert.ok(second.body?.kvlistValue, 'log 2: a map body arrives as kvlistValue');
    });
    bad.check(() => assert.deepEqual(get('4').body,
                                     { bytesValue: Buffer.from([0, 1, 2, 253, 254, 255]).toString('base64') },
                                     'log 4: bytes body (base64 in JSON)'));
    bad.done('log records');
}

const VARIANTS = [];
for (const transport of Object.keys(PKG)) {
    for (const compression of ['none', 'gzip']) {
        VARIANTS.push({ transport, compression, batch: {}, label: '' });
    }
}
// Small batches make the batch processor split and merge requests; the data must not change.
VARIANTS.push({ transport: 'http/protobuf', compression: 'none', batch: { send_batch_size: 7, send_batch_max_size: 10 },
                label: ', batches of at most 10 items' });
VARIANTS.push({ transport: 'grpc', compression: 'gzip', batch: { send_batch_size: 7, send_batch_max_size: 10 },
                label: ', batches of at most 10 items' });

for (const { transport, compression, batch, label } of VARIANTS) {
    test(`JS SDK over ${transport}, compression ${compression}${label}`, { timeout: 120000 }, async (t) => {
        const c = await startCollector({ batch });
        t.after(() => c.kill());
        const resource = resourceFromAttributes({
            'service.name': 'otelmon-interop',
            'test.transport': `${transport}+${compression}`,
            'res.int': 7, 'res.double': 0.25, 'res.bool': false, 'res.array': ['x', 'y'],
        });
        const spans = await makeSpans(resource);
        const metrics = await makeMetrics(resource);
        const spanCtx = spans.find((s) => s.name === 'root').spanContext();
        const logs = await makeLogs(resource, spanCtx);
        const exp = makeExporters(transport, compression, c);
        try {
            await c.check(async () => {
                await exportWith(exp.traces, spans, 'traces');
                await exportWith(exp.metrics, metrics.resourceMetrics, 'metrics');
                await exportWith(exp.logs, logs, 'logs');
            });
        } finally {
            await Promise.all([exp.traces.shutdown(), exp.metrics.shutdown(), exp.logs.shutdown()]);
        }
        await c.stop();
        const out = await c.check(async () => c.output());
        await t.test('traces', () => c.check(() => checkTraces(spans, out, transport)));
        await t.test('metrics', () => c.check(() => checkMetrics(metrics, out, transport)));
        await t.test('logs', () => c.check(() => checkLogs(logs, spanCtx, out, transport)));
    });
}

// Many exports at once over all three transports into one collector: every span arrives once.
test('concurrent exports over every transport arrive exactly once', { timeout: 120000 }, async (t) => {
    const c = await startCollector({ batch: { send_batch_size: 500 } });
    t.after(() => c.kill());
    const mem = new InMemorySpanExporter();
    const provider = new BasicTracerProvider({
        resource: resourceFromAttributes({ 'service.name': 'otelmon-volume' }),
        spanProcessors: [new SimpleSpanProcessor(mem)],
    });
    const tracer = provider.getTracer('volume');
    const EXPORTS = 10;
    const SPANS = 100;
    const jobs = [];
    const exporters = [];
    for (const transport of Object.keys(PKG)) {
        for (let e = 0; e < EXPORTS; e++) {
            mem.reset();
            for (let i = 0; i < SPANS; i++) {
                tracer.startSpan(`${transport}.${e}.${i}`, { attributes: { i, e, transport } }).end();
            }
            const spans = mem.getFinishedSpans().slice();
            const exp = makeExporters(transport, e % 2 ? 'gzip' : 'none', c);
            exporters.push(exp);
            jobs.push({ spans, exp, transport });
        }
    }
    try {
        await c.check(() => Promise.all(jobs.map((j) => exportWith(j.exp.traces, j.spans, `traces over ${j.transport}`))));
    } finally {
        await Promise.all(exporters.flatMap((x) => [x.traces.shutdown(), x.metrics.shutdown(), x.logs.shutdown()]));
    }
    await c.stop();
    await c.check(() => {
        const got = flattenSpans(c.output().resourceSpans).map((x) => spanKey(x.item));
        const want = jobs.flatMap((j) => j.spans.map((sp) => `${sp.spanContext().traceId}/${sp.spanContext().spanId}`));
        assert.equal(got.length, want.length, `spans in the output: ${got.length}, sent: ${want.length}`);
        assert.deepEqual([...new Set(got)].sort(), [...want].sort(), 'every span exactly once');
    });
});

// U+0000 is a valid character in a protobuf string and in JSON ("\u0000"); otelcol keeps it.
// Kept apart from the test above so that one known gap does not hide every other difference.
// Known gap, reported as TODO until fixed: protobuf-c keeps proto strings as NUL-terminated
// char *, so a string is cut at its first U+0000 (and jansson refuses \u0000 in JSON). The
// fix is to generate the OTLP string fields as length-carrying data.
const NUL_TODO = 'known gap: protobuf-c strings are NUL-terminated (see README, Known limitations)';
for (const transport of Object.keys(PKG)) {
    test(`strings containing U+0000 survive ${transport}`, { timeout: 60000, todo: NUL_TODO }, async (t) => {
        const c = await startCollector();
        t.after(() => c.kill());
        const resource = resourceFromAttributes({ 'service.name': 'otelmon-nul' });
        const mem = new InMemorySpanExporter();
        const provider = new BasicTracerProvider({ resource, spanProcessors: [new SimpleSpanProcessor(mem)] });
        provider.getTracer('nul').startSpan('nul\u0000name', { attributes: { 'nul.attr': 'a\u0000b', 'n\u0000k': 'v' } }).end();
        const spans = mem.getFinishedSpans();
        const exp = makeExporters(transport, 'none', c);
        try {
            await c.check(() => exportWith(exp.traces, spans, 'traces'));
        } finally {
            await Promise.all([exp.traces.shutdown(), exp.metrics.shutdown(), exp.logs.shutdown()]);
        }
        await c.stop();
        await c.check(() => checkTraces(spans, c.output(), transport));
    });
}

// Values the SDK never produces, sent as hand-built protobuf: NaN and infinities, int64
// extremes, oneof members holding zero, optional fields present with zero or absent, summary
// and exponential histogram points, exemplars (whose ids are hex in JSON), span kind
// UNSPECIFIED, dropped counts, bytes and map attributes, trace flags, schema URLs, scope
// attributes. The expected JSON is the OTLP JSON mapping of exactly what is encoded here.
test('hand-built protobuf with values the SDK cannot produce', { timeout: 60000 }, async (t) => {
    const c = await startCollector();
    t.after(() => c.kill());
    const T0 = 1700000000000000000n;
    const traceId = '5b8efff798038103d269b633813fc60c';
    const spanId = 'eee19b7ec3c1b174';
    const parentId = '00f067aa0ba902b7';
    const hex = (h) => Buffer.from(h, 'hex');
    const sAttr = (f, k, v) => fKeyValue(f, k, fString(1, v));
    const jAttr = (k, v) => ({ key: k, value: { stringValue: v } });
    const zigzag = (n) => (n < 0 ? -2 * n - 1 : 2 * n);

    // ---- metrics
    const gaugeCases = [
        ['nan', [fDouble(4, NaN)], { asDouble: 'NaN' }],
        ['inf', [fDouble(4, Infinity)], { asDouble: 'Infinity' }],
        ['-inf', [fDouble(4, -Infinity)], { asDouble: '-Infinity' }],
        ['max', [fDouble(4, Number.MAX_VALUE)], { asDouble: Number.MAX_VALUE }],
        ['min', [fDouble(4, 5e-324)], { asDouble: 5e-324 }],
        ['int-min', [fSfixed64(6, -(2n ** 63n))], { asInt: '-9223372036854775808' }],
        ['int-max', [fSfixed64(6, 2n ** 63n - 1n)], { asInt: '9223372036854775807' }],
        ['zero-int', [fSfixed64(6, 0)], { asInt: '0' }],
        ['zero-double', [fDouble(4, 0)], { asDouble: 0 }],
        ['no-value', [fVarint(8, 1)], { flags: 1 }],
        ['exemplar', [fSfixed64(6, 5), fMsg(5, fFixed64(2, T0), fDouble(3, 1.5), fBytes(4, hex(spanId)),
                                           fBytes(5, hex(traceId)), sAttr(7, 'fk', 'fv'))],
         { asInt: '5', exemplars: [{ timeUnixNano: String(T0), asDouble: 1.5, spanId, traceId,
                                     filteredAttributes: [jAttr('fk', 'fv')] }] }],
    ];
    const gauge = fMsg(2, fString(1, 'special.gauge'), fString(2, 'desc'), fString(3, '1'),
                       fMsg(5, ...gaugeCases.map(([k, v]) => fMsg(1, sAttr(7, 'case', k), fFixed64(2, T0),
                                                                  fFixed64(3, T0 + 1n), ...v))));
    const summary = fMsg(2, fString(1, 'special.summary'), fMsg(11, fMsg(1, sAttr(7, 'k', 'v'), fFixed64(2, T0),
        fFixed64(3, T0 + 1n), fFixed64(4, 10), fDouble(5, 12.5), fMsg(6, fDouble(1, 0), fDouble(2, 0.5)),
        fMsg(6, fDouble(1, 1), fDouble(2, 4)))));
    const histogram = fMsg(2, fString(1, 'special.histogram'), fMsg(9, fMsg(1, sAttr(9, 'k', 'v'), fFixed64(2, T0),
        fFixed64(3, T0 + 1n), fFixed64(4, 3), fPackedFixed64(6, [1, 0, 2]), fPackedDouble(7, [0, 10]),
        fDouble(11, 0), fDouble(12, 0)), fVarint(2, 1)));
    const packedVarints = (list) => Buffer.concat(list.map((n) => varint(n)));
    const expHistogram = fMsg(2, fString(1, 'special.exp_histogram'), fMsg(10, fMsg(1, sAttr(1, 'k', 'v'),
        fFixed64(2, T0), fFixed64(3, T0 + 1n), fFixed64(4, 6), fDouble(5, 7.5), fVarint(6, zigzag(-3)), fFixed64(7, 1),
        fMsg(8, fVarint(1, zigzag(-2)), fBytes(2, packedVarints([1, 2, 0, 1]))),
        fMsg(9, fVarint(1, zigzag(1)), fBytes(2, packedVarints([1]))), fDouble(14, 0.001)), fVarint(2, 2)));
    const resource = fMsg(1, sAttr(1, 'service.name', 'hand-built'), fVarint(2, 3));
    const scope = fMsg(1, fString(1, 'hs'), fString(2, '9.9'), sAttr(3, 'scope.attr', 'x'), fVarint(4, 1));
    const metricsReq = fMsg(1, resource, fMsg(2, scope, gauge, summary, histogram, expHistogram,
                                              fString(3, 'https://example.com/scope-schema')),
                            fString(3, 'https://example.com/resource-schema'));
    const expResource = { attributes: [jAttr('service.name', 'hand-built')], droppedAttributesCount: 3 };
    const expScope = { name: 'hs', version: '9.9', attributes: [jAttr('scope.attr', 'x')], droppedAttributesCount: 1 };
    const expectedMetrics = [{
        resource: expResource,
        schemaUrl: 'https://example.com/resource-schema',
        scopeMetrics: [{
            scope: expScope,
            schemaUrl: 'https://example.com/scope-schema',
            metrics: [
                { name: 'special.gauge', description: 'desc', unit: '1', gauge: { dataPoints: gaugeCases.map(([k, , v]) => (
                    { attributes: [jAttr('case', k)], startTimeUnixNano: String(T0), timeUnixNano: String(T0 + 1n), ...v })) } },
                { name: 'special.summary', summary: { dataPoints: [{ attributes: [jAttr('k', 'v')], startTimeUnixNano: String(T0),
                    timeUnixNano: String(T0 + 1n), count: '10', sum: 12.5,
                    quantileValues: [{ quantile: 0, value: 0.5 }, { quantile: 1, value: 4 }] }] } },
                { name: 'special.histogram', histogram: { aggregationTemporality: 1, dataPoints: [{ attributes: [jAttr('k', 'v')],
                    startTimeUnixNano: String(T0), timeUnixNano: String(T0 + 1n), count: '3', bucketCounts: ['1', '0', '2'],
                    explicitBounds: [0, 10], min: 0, max: 0 }] } },
                { name: 'special.exp_histogram', exponentialHistogram: { aggregationTemporality: 2, dataPoints: [{
                    attributes: [jAttr('k', 'v')], startTimeUnixNano: String(T0), timeUnixNano: String(T0 + 1n), count: '6',
                    sum: 7.5, scale: -3, zeroCount: '1', positive: { offset: -2, bucketCounts: ['1', '2', '0', '1'] },
                    negative: { offset: 1, bucketCounts: ['1'] }, zeroThreshold: 0.001 }] } },
            ],
        }],
    }];

    // ---- traces
    const span = fMsg(2, fBytes(1, hex(traceId)), fBytes(2, hex(spanId)), fString(3, 'a=b,c=d'), fBytes(4, hex(parentId)),
        fFixed32(16, 0x301), fString(5, 'hand.span'), fFixed64(7, T0), fFixed64(8, T0 + 5n),
        fKeyValue(9, 'whole.double', fDouble(4, 3)),
        fKeyValue(9, 'bytes', fBytes(7, Buffer.from([0, 255, 1, 254]))),
        fKeyValue(9, 'map', fMsg(6, fKeyValue(1, 'inner', fVarint(3, 7)), fKeyValue(1, 'empty', Buffer.alloc(0)))),
        fKeyValue(9, 'mixed', fMsg(5, fMsg(1, fVarint(3, 1)), fMsg(1, fString(1, 'a')), fMsg(1, fVarint(2, 1)))),
        fKeyValue(9, 'neg', fVarint(3, -5)),
        fVarint(10, 4),
        fMsg(11, fFixed64(1, T0 + 1n), fString(2, 'ev'), sAttr(3, 'ek', 'ev'), fVarint(4, 1)),
        fVarint(12, 5),
        fMsg(13, fBytes(1, hex(traceId)), fBytes(2, hex(parentId)), fString(3, 'x=y'), sAttr(4, 'lk', 'lv'), fVarint(5, 2),
             fFixed32(6, 0x100)),
        fVarint(14, 6),
        fMsg(15, fString(2, 'ok msg'), fVarint(3, 1)));
    const tracesReq = fMsg(1, resource, fMsg(2, scope, span));
    const expectedSpans = [{
        resource: expResource,
        scopeSpans: [{
            scope: expScope,
            spans: [{
                traceId, spanId, traceState: 'a=b,c=d', parentSpanId: parentId, flags: 0x301, name: 'hand.span',
                startTimeUnixNano: String(T0), endTimeUnixNano: String(T0 + 5n),
                attributes: [
                    { key: 'whole.double', value: { doubleValue: 3 } },
                    { key: 'bytes', value: { bytesValue: Buffer.from([0, 255, 1, 254]).toString('base64') } },
                    { key: 'map', value: { kvlistValue: { values: [{ key: 'inner', value: { intValue: '7' } }, { key: 'empty', value: {} }] } } },
                    { key: 'mixed', value: { arrayValue: { values: [{ intValue: '1' }, { stringValue: 'a' }, { boolValue: true }] } } },
                    { key: 'neg', value: { intValue: '-5' } },
                ],
                droppedAttributesCount: 4,
                events: [{ timeUnixNano: String(T0 + 1n), name: 'ev', attributes: [jAttr('ek', 'ev')], droppedAttributesCount: 1 }],
                droppedEventsCount: 5,
                links: [{ traceId, spanId: parentId, traceState: 'x=y', attributes: [jAttr('lk', 'lv')], droppedAttributesCount: 2,
                          flags: 0x100 }],
                droppedLinksCount: 6,
                status: { message: 'ok msg', code: 1 },
            }],
        }],
    }];

    // ---- logs
    const logs = [
        [fFixed64(11, T0 + 2n), fMsg(5, fDouble(4, 2.5)), fKeyValue(6, 'b', fVarint(2, 0)), fFixed32(8, 1),
         fBytes(9, hex(traceId)), fBytes(10, hex(spanId)), fString(12, 'hand.event'), fVarint(7, 2)],
        [fFixed64(1, T0 + 3n), fVarint(2, 24), fString(3, 'FATAL4'), fMsg(5, fVarint(2, 1))],
        [fFixed64(1, T0 + 4n), fMsg(5, fMsg(5, fMsg(1, fVarint(3, 1)), fMsg(1, fMsg(6, fKeyValue(1, 'k', fString(1, 'v'))))))],
    ];
    const logsReq = fMsg(1, resource, fMsg(2, scope, ...logs.map((l) => fMsg(2, ...l))));
    const expectedLogs = [{
        resource: expResource,
        scopeLogs: [{
            scope: expScope,
            logRecords: [
                { observedTimeUnixNano: String(T0 + 2n), body: { doubleValue: 2.5 }, attributes: [{ key: 'b', value: { boolValue: false } }],
                  flags: 1, traceId, spanId, eventName: 'hand.event', droppedAttributesCount: 2 },
                { timeUnixNano: String(T0 + 3n), severityNumber: 24, severityText: 'FATAL4', body: { boolValue: true } },
                { timeUnixNano: String(T0 + 4n), body: { arrayValue: { values: [{ intValue: '1' },
                    { kvlistValue: { values: [jAttr('k', 'v')] } }] } } },
            ],
        }],
    }];

    await c.check(async () => {
        const post = (p, body) => new Promise((resolve, reject) => {
            const req = http.request({ host: '127.0.0.1', port: c.httpPort, method: 'POST', path: p, agent: false,
                                       headers: { 'content-type': 'application/x-protobuf' } }, (res) => {
                res.resume();
                res.on('end', () => resolve(res.statusCode));
            });
            req.on('error', reject);
            req.end(body);
        });
        assert.equal(await post('/v1/metrics', metricsReq), 200, 'metrics request');
        assert.equal(await post('/v1/traces', tracesReq), 200, 'traces request');
        assert.equal(await post('/v1/logs', logsReq), 200, 'logs request');
        await c.stop();
        const out = c.output();
        const bad = new Mismatches();
        bad.check(() => assert.deepEqual(canonical(out.resourceMetrics, 'metrics', true), canonical(expectedMetrics), 'metrics'));
        bad.check(() => assert.deepEqual(canonical(out.resourceSpans, 'spans', true), canonical(expectedSpans), 'spans'));
        bad.check(() => assert.deepEqual(canonical(out.resourceLogs, 'logs', true), canonical(expectedLogs), 'logs'));
        // The JSON mapping writes non-finite doubles as strings (JSON has no literal for them).
        const raw = readFileSync(c.outPath, 'utf8');
        for (const v of ['"NaN"', '"Infinity"', '"-Infinity"']) {
            bad.check(() => assert.ok(raw.includes(`"asDouble":${v}`), `the output holds "asDouble":${v}`));
        }
        bad.done('items');
    });
});
