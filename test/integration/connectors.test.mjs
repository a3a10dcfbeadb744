// connectors.test.mjs: connectors joining pipelines, seen from outside. The OpenTelemetry JS
// SDK sends spans of known durations; spanmetrics turns them into metrics that a metrics
// pipeline writes to a file, and the counts and bucket counts there must be what was sent.
// forward fans one pipeline out to two, and both get every span once. `otelmon validate`
// reports connector mistakes in otelcol's words.
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import test from 'node:test';

import {
    flattenMetrics, flattenSpans, readFileOutput, requireJs, runOtelmon, startCollector, tempDir,
} from '../js/harness.mjs';

const api = requireJs('@opentelemetry/api');
const { ExportResultCode } = requireJs('@opentelemetry/core');
const { resourceFromAttributes } = requireJs('@opentelemetry/resources');
const { BasicTracerProvider, InMemorySpanExporter, SimpleSpanProcessor } =
    requireJs('@opentelemetry/sdk-trace-base');

for (const k of Object.keys(process.env)) {
    if (k.startsWith('OTEL_')) {
        delete process.env[k];
    }
}

function exportSpans(exporter, spans) {
    return new Promise((resolve, reject) => {
        exporter.export(spans, (res) => {
            if (res.code === ExportResultCode.SUCCESS) {
                resolve();
            } else {
                reject(new Error(`the SDK exporter reported failure: ${res.error}`));
            }
        });
    });
}

function traceExporter(transport, c) {
    if (transport === 'grpc') {
        const { OTLPTraceExporter } = requireJs('@opentelemetry/exporter-trace-otlp-grpc');
        return new OTLPTraceExporter({ url: `http://${c.grpcAddress}`, timeoutMillis: 15000 });
    }
    const { OTLPTraceExporter } = requireJs('@opentelemetry/exporter-trace-otlp-proto');
    return new OTLPTraceExporter({ url: `${c.httpUrl}/v1/traces`, timeoutMillis: 15000 });
}

const T0 = 1700000000;

// What the SDK sends: [name, kind, error, http.method or undefined, duration in ms]...
const PLAN = [
    ['GET /items', 'SERVER', false, undefined, 1],
    ['GET /items', 'SERVER', false, undefined, 5], // on the bound 5: that bucket
    ['GET /items', 'SERVER', false, undefined, 12],
    ['GET /items', 'SERVER', false, undefined, 700],
    ['GET /items', 'SERVER', false, undefined, 2500], // above the last bound
    ['GET /items', 'SERVER', false, 'POST', 30], // its own series (http.method)
    ['SELECT', 'CLIENT', true, undefined, 2],
    ['SELECT', 'CLIENT', true, undefined, 60],
    ['SELECT', 'CLIENT', false, undefined, 3],
];
const BOUNDS = [5, 50, 500, 1000];

function makeSpans(service) {
    const mem = new InMemorySpanExporter();
    const provider = new BasicTracerProvider({
        resource: resourceFromAttributes({ 'service.name': service, 'deployment.environment': 'it' }),
        spanProcessors: [new SimpleSpanProcessor(mem)],
    });
    const tracer = provider.getTracer('connectors-it', '1.0.0');
    PLAN.forEach(([name, kind, error, method, ms], i) => {
        const attributes = method ? { 'http.method': method } : {};
        const span = tracer.startSpan(name, { kind: api.SpanKind[kind], attributes,
                                             startTime: [T0 + i, 0] });
        if (error) {
            span.setStatus({ code: api.SpanStatusCode.ERROR });
        }
        span.end([T0 + i + Math.floor(ms / 1000), (ms % 1000) * 1e6]);
    });
    return mem.getFinishedSpans();
}

/** The series the plan makes: key -> {count, sum, buckets}. */
function expectedSeries(service) {
    const series = new Map();
    for (const [name, kind, error, method, ms] of PLAN) {
        const k = [service, name, `SPAN_KIND_${kind}`, error ? 'STATUS_CODE_ERROR' : 'STATUS_CODE_UNSET',
                   method ?? 'GET'].join('|');
        const s = series.get(k) ?? { count: 0, sum: 0, buckets: new Array(BOUNDS.length + 1).fill(0) };
        s.count++;
        s.sum += ms;
        const b = BOUNDS.findIndex((bound) => ms <= bound);
        s.buckets[b < 0 ? BOUNDS.length : b]++;
        series.set(k, s);
    }
    return series;
}

function attrs(dp) {
    const m = {};
    for (const kv of dp.attributes ?? []) {
        m[kv.key] = kv.value.stringValue ?? kv.value.intValue ?? kv.value.boolValue;
    }
    return m;
}

const seriesKey = (dp, service) => {
    const a = attrs(dp);
    assert.equal(a['service.name'], service);
    return [a['service.name'], a['span.name'], a['span.kind'], a['status.code'], a['http.method']].join('|');
};

/** The last data point of each series of a metric, over every flush in the file. */
function lastPoints(out, name, kind) {
    const last = new Map();
    for (const m of flattenMetrics(out.resourceMetrics)) {
        if (m.item.name === name) {
            for (const dp of m.item[kind].dataPoints) {
                last.set(JSON.stringify(dp.attributes), { dp, metric: m });
            }
        }
    }
    return [...last.values()];
}

for (const transport of ['grpc', 'http/protobuf']) {
    test(`spanmetrics: SDK spans over ${transport} become calls and duration metrics in a file`,
         { timeout: 60000 }, async (t) => {
        const c = await startCollector({
            yaml: (o) => `receivers:
  otlp:
    protocols:
      grpc: {endpoint: 127.0.0.1:${o.grpcPort}}
      http: {endpoint: 127.0.0.1:${o.httpPort}}
processors:
  batch:
    timeout: 20ms
exporters:
  file: {path: ${JSON.stringify(o.outPath)}}
connectors:
  spanmetrics:
    histogram:
      explicit:
        buckets: [5ms, 50ms, 500ms, 1s]
    dimensions:
      - name: http.method
        default: GET
    metrics_flush_interval: 100ms
service:
  pipelines:
    traces:
      receivers: [otlp]
      processors: [batch]
      exporters: [spanmetrics]
    metrics:
      receivers: [spanmetrics]
      processors: [batch]
      exporters: [file]
`,
        });
        t.after(() => c.kill());
        const service = `shop-${transport}`;
        const exporter = traceExporter(transport, c);
        try {
            await c.check(() => exportSpans(exporter, makeSpans(service)));
        } finally {
            await exporter.shutdown();
        }
        // Let a few flushes happen (cumulative: a new series is sent as 0 first), then stop:
        // the last flush, at shutdown, sends the totals.
        await new Promise((resolve) => setTimeout(resolve, 350));
        await c.stop();
        await c.check(() => {
            const out = c.output();
            assert.ok(out.resourceMetrics.length > 0, 'metrics were written');
            assert.equal(out.resourceSpans.length, 0, 'spans go only to spanmetrics');
            const want = expectedSeries(service);
            const calls = lastPoints(out, 'traces.span.metrics.calls', 'sum');
            const durations = lastPoints(out, 'traces.span.metrics.duration', 'histogram');
            assert.equal(calls.length, want.size, 'one calls series per span name, kind, status, method');
            assert.equal(durations.length, want.size, 'one duration series each');
            for (const { dp, metric } of calls) {
                const w = want.get(seriesKey(dp, service));
                assert.ok(w, `unexpected series ${JSON.stringify(attrs(dp))}`);
                assert.equal(Number(dp.asInt), w.count, `calls of ${JSON.stringify(attrs(dp))}`);
                assert.equal(metric.item.sum.isMonotonic, true);
                assert.equal(metric.item.sum.aggregationTemporality, 2); // cumulative
                assert.equal(metric.resource.attributes.find((a) => a.key === 'deployment.environment')
                    .value.stringValue, 'it');
                assert.equal(metric.scope.name, 'spanmetricsconnector');
            }
            for (const { dp, metric } of durations) {
                const w = want.get(seriesKey(dp, service));
                assert.equal(metric.item.unit, 'ms');
                assert.equal(Number(dp.count), w.count);
                assert.deepEqual(dp.explicitBounds, BOUNDS);
                assert.deepEqual(dp.bucketCounts.map(Number), w.buckets,
                                 `buckets of ${JSON.stringify(attrs(dp))}`);
                assert.ok(Math.abs(dp.sum - w.sum) < 1e-6, `sum ${dp.sum}, want ${w.sum}`);
            }
            const total = calls.reduce((n, { dp }) => n + Number(dp.asInt), 0);
            assert.equal(total, PLAN.length, 'every span counted once');
        });
    });
}

// The seed's shape: one pipeline takes everything in and fans out, through forward, to a
// pipeline for the trace store and one for the alarm service, each with its own processors.
test('forward: traces/in fans out to traces/tempo and traces/alarms', { timeout: 60000 }, async (t) => {
    const c = await startCollector({
        yaml: (o) => `receivers:
  otlp:
    protocols:
      grpc: {endpoint: 127.0.0.1:${o.grpcPort}}
      http: {endpoint: 127.0.0.1:${o.httpPort}}
processors:
  batch:
    timeout: 20ms
  batch/slow:
    timeout: 10s
exporters:
  file/tempo: {path: ${JSON.stringify(path.join(o.dir, 'tempo.jsonl'))}}
  file/alarms: {path: ${JSON.stringify(path.join(o.dir, 'alarms.jsonl'))}}
connectors:
  forward:
service:
  pipelines:
    traces/in:
      receivers: [otlp]
      processors: [batch]
      exporters: [forward]
    traces/tempo:
      receivers: [forward]
      processors: [batch/slow]
      exporters: [file/tempo]
    traces/alarms:
      receivers: [forward]
      exporters: [file/alarms]
`,
    });
    t.after(() => c.kill());
    const spans = makeSpans('fanned-out');
    const exporter = traceExporter('http/protobuf', c);
    try {
        await c.check(() => exportSpans(exporter, spans));
    } finally {
        await exporter.shutdown();
    }
    // batch/slow holds its spans until shutdown, which drains it before the exporters stop.
    await c.stop();
    await c.check(() => {
        const want = spans.map((s) => s.spanContext().spanId).sort();
        for (const name of ['tempo', 'alarms']) {
            const out = readFileOutput(path.join(c.dir, `${name}.jsonl`));
            const got = flattenSpans(out.resourceSpans).map((s) => s.item.spanId.toLowerCase()).sort();
            assert.deepEqual(got, want, `every span once in ${name}`);
        }
    });
});

test('validate: connector mistakes in otelcol\'s words, with file:line:column', () => {
    const dir = tempDir();
    const file = path.join(dir, 'bad.yaml');
    writeFileSync(file, `receivers:
  otlp:
    protocols:
      grpc:
exporters:
  debug:
connectors:
  forward:
  spanmetrics:
service:
  pipelines:
    traces:
      receivers: [otlp, forward]
      exporters: [forward]
    metrics:
      receivers: [otlp]
      exporters: [spanmetrics]
    logs:
      receivers: [spanmetrics]
      exporters: [debug]
`);
    const r = runOtelmon(['validate', '--config', file]);
    assert.equal(r.code, 1, r.stderr);
    assert.match(r.stderr, new RegExp(`${file}:17:19: connector "spanmetrics" used as exporter in ` +
                                      '\\[metrics\\] pipeline but not used in any supported receiver pipeline'));
    assert.match(r.stderr, new RegExp(`${file}:19:19: connector "spanmetrics" used as receiver in ` +
                                      '\\[logs\\] pipeline but not used in any supported exporter pipeline'));
    assert.match(r.stderr, new RegExp(`${file}:14:19: cycle detected: connector "forward" \\(traces to ` +
                                      'traces\\) -> connector "forward" \\(traces to traces\\)'));
});
