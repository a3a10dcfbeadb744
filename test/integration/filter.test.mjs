// filter.test.mjs: the filter processor between the real OTLP receiver and the file exporter.
// The OpenTelemetry JS SDK makes spans (with events), metrics and log records of known
// content and sends them over OTLP/gRPC and OTLP/HTTP protobuf; after a graceful shutdown the
// file exporter's output must hold exactly the items the conditions keep, item by item (by
// span id, by metric name and attributes, by log sequence number), and none it drops. The
// expected sets are computed here from the SDK's own records with the same rules written in
// JavaScript.
import assert from 'node:assert/strict';
import test from 'node:test';

import { flattenLogs, flattenMetrics, flattenSpans, requireJs, startCollector } from '../js/harness.mjs';
import { tracesProto } from '../js/otlp_build.mjs';

const api = requireJs('@opentelemetry/api');
const apiLogs = requireJs('@opentelemetry/api-logs');
const { ExportResultCode } = requireJs('@opentelemetry/core');
const { resourceFromAttributes } = requireJs('@opentelemetry/resources');
const { BasicTracerProvider, InMemorySpanExporter, SimpleSpanProcessor } =
    requireJs('@opentelemetry/sdk-trace-base');
const { MeterProvider, MetricReader } = requireJs('@opentelemetry/sdk-metrics');
const { LoggerProvider, InMemoryLogRecordExporter, SimpleLogRecordProcessor } =
    requireJs('@opentelemetry/sdk-logs');

for (const k of Object.keys(process.env)) {
    if (k.startsWith('OTEL_')) {
        delete process.env[k];
    }
}

const PKG = { grpc: 'grpc', 'http/protobuf': 'proto' };

function exportAll(exporter, items, what) {
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

function exporters(transport, c) {
    const suffix = PKG[transport];
    const url = (p) => (transport === 'grpc' ? `http://${c.grpcAddress}` : `${c.httpUrl}${p}`);
    const { OTLPTraceExporter } = requireJs(`@opentelemetry/exporter-trace-otlp-${suffix}`);
    const { OTLPMetricExporter } = requireJs(`@opentelemetry/exporter-metrics-otlp-${suffix}`);
    const { OTLPLogExporter } = requireJs(`@opentelemetry/exporter-logs-otlp-${suffix}`);
    return {
        traces: new OTLPTraceExporter({ url: url('/v1/traces'), timeoutMillis: 15000 }),
        metrics: new OTLPMetricExporter({ url: url('/v1/metrics'), timeoutMillis: 15000 }),
        logs: new OTLPLogExporter({ url: url('/v1/logs'), timeoutMillis: 15000 }),
    };
}

// ---- the data ------------------------------------------------------------------------------

const ROUTES = ['/health', '/api/orders', '/health', '/api/users', '/metrics'];

/** Spans of two services: health checks, cache lookups, API calls; some events are noise. */
async function makeSpans() {
    const spans = [];
    for (const svc of ['checkout', 'cart']) {
        const mem = new InMemorySpanExporter();
        const provider = new BasicTracerProvider({
            resource: resourceFromAttributes({ 'service.name': svc, 'deployment.environment': 'prod' }),
            spanProcessors: [new SimpleSpanProcessor(mem)],
        });
        const tracer = provider.getTracer('filter-it', '1.0.0');
        for (let i = 0; i < 20; i++) {
            const route = ROUTES[i % ROUTES.length];
            const kind = [api.SpanKind.SERVER, api.SpanKind.INTERNAL, api.SpanKind.CLIENT][i % 3];
            const name = kind === api.SpanKind.INTERNAL ? `cache.get ${i}` : `GET ${route}`;
            const span = tracer.startSpan(name, {
                kind,
                attributes: { 'http.route': route, 'http.status_code': i % 4 === 0 ? 500 : 200, seq: i },
            });
            span.addEvent(i % 2 === 0 ? 'noise' : 'retry', { n: i });
            span.addEvent('checkpoint');
            span.end();
        }
        await provider.forceFlush();
        spans.push(...mem.getFinishedSpans());
        await provider.shutdown();
    }
    return spans;
}

class ManualReader extends MetricReader {
    async onShutdown() {}
    async onForceFlush() {}
}

async function makeMetrics() {
    const reader = new ManualReader();
    const provider = new MeterProvider({
        resource: resourceFromAttributes({ 'service.name': 'metrics-svc' }),
        readers: [reader],
    });
    const meter = provider.getMeter('filter-it');
    const requests = meter.createCounter('http.requests');
    for (const env of ['prod', 'test', 'staging']) {
        for (const method of ['GET', 'POST']) {
            requests.add(env.length + method.length, { env, method });
        }
    }
    meter.createCounter('drop.me').add(1, { env: 'prod' });
    const latency = meter.createHistogram('http.latency', { unit: 'ms' });
    latency.record(12, { env: 'test' });
    latency.record(7, { env: 'prod' });
    const { resourceMetrics, errors } = await reader.collect();
    assert.deepEqual(errors, []);
    await provider.shutdown();
    return resourceMetrics;
}

const LEVELS = [
    ['DEBUG', 'cache warmed'], ['INFO', 'user logged in'], ['WARN', 'slow query'],
    ['ERROR', 'payment failed'], ['WARN', 'password=hunter2 leaked'], ['FATAL', 'out of memory'],
    ['INFO', 'password reset'], ['ERROR', 'disk full'], ['TRACE', 'tick'], ['UNSPECIFIED', 'no level'],
];

async function makeLogs() {
    const mem = new InMemoryLogRecordExporter();
    const provider = new LoggerProvider({
        resource: resourceFromAttributes({ 'service.name': 'logs-svc' }),
        processors: [new SimpleLogRecordProcessor({ exporter: mem })],
    });
    const logger = provider.getLogger('filter-it');
    LEVELS.forEach(([level, body], seq) => {
        logger.emit({ severityNumber: apiLogs.SeverityNumber[level], severityText: level, body,
                      attributes: { seq } });
    });
    await provider.forceFlush();
    const records = mem.getFinishedLogRecords();
    await provider.shutdown();
    return records;
}

// ---- the runs ------------------------------------------------------------------------------

function filterYaml(filterBody) {
    return (o) => `receivers:
  otlp:
    protocols:
      grpc: {endpoint: 127.0.0.1:${o.grpcPort}}
      http: {endpoint: 127.0.0.1:${o.httpPort}}
processors:
  filter:
${filterBody}
exporters:
  file: {path: ${JSON.stringify(o.outPath)}}
service:
  pipelines:
    traces: {receivers: [otlp], processors: [filter], exporters: [file]}
    metrics: {receivers: [otlp], processors: [filter], exporters: [file]}
    logs: {receivers: [otlp], processors: [filter], exporters: [file]}
`;
}

/** Sends the data over transport through a collector whose filter is filterBody; returns the
 * file exporter's items. */
async function run(t, transport, filterBody, data) {
    const c = await startCollector({ yaml: filterYaml(filterBody) });
    t.after(() => c.kill());
    const ex = exporters(transport, c);
    await exportAll(ex.traces, data.spans, 'traces');
    await exportAll(ex.metrics, data.metrics, 'metrics');
    await exportAll(ex.logs, data.logs, 'logs');
    await Promise.all([ex.traces.shutdown(), ex.metrics.shutdown(), ex.logs.shutdown()]);
    await c.stop();
    const out = c.output();
    return {
        spans: flattenSpans(out.resourceSpans),
        metrics: flattenMetrics(out.resourceMetrics),
        logs: flattenLogs(out.resourceLogs),
    };
}

const attr = (attrs, key) => {
    const kv = (attrs ?? []).find((a) => a.key === key);
    if (!kv) {
        return undefined;
    }
    const v = kv.value;
    return v.stringValue ?? (v.intValue !== undefined ? Number(v.intValue) : v.doubleValue ?? v.boolValue);
};

/** Output spans by id: {name, events}. */
function spansById(items) {
    const m = new Map();
    for (const { item } of items) {
        const id = item.spanId.toLowerCase();
        assert.ok(!m.has(id), `span ${id} arrived twice`);
        m.set(id, { name: item.name, events: (item.events ?? []).map((e) => e.name) });
    }
    return m;
}

/** Output data points as "metric|env|method" keys. */
function pointKeys(items) {
    const keys = [];
    for (const { item } of items) {
        const points = (item.sum ?? item.gauge ?? item.histogram ?? {}).dataPoints ?? [];
        assert.ok(points.length > 0, `metric ${item.name} arrived without points`);
        for (const p of points) {
            keys.push(`${item.name}|${attr(p.attributes, 'env')}|${attr(p.attributes, 'method') ?? ''}`);
        }
    }
    return keys.sort();
}

/** The SDK's data points as the same keys, with keep() applied. */
function expectedPoints(resourceMetrics, keep) {
    const keys = [];
    for (const sm of resourceMetrics.scopeMetrics) {
        for (const m of sm.metrics) {
            for (const p of m.dataPoints) {
                if (keep(m.descriptor.name, p.attributes)) {
                    keys.push(`${m.descriptor.name}|${p.attributes.env}|${p.attributes.method ?? ''}`);
                }
            }
        }
    }
    return keys.sort();
}

const OTTL = `    error_mode: ignore
    traces:
      span:
        - 'attributes["http.route"] == "/health"'
        - 'kind == SPAN_KIND_INTERNAL and IsMatch(name, "^cache\\\\.get [0-9]*[05]$")'
      spanevent:
        - 'name == "noise"'
    metrics:
      metric:
        - 'name == "drop.me"'
      datapoint:
        - 'attributes["env"] == "test"'
    logs:
      log_record:
        - 'severity_number < SEVERITY_NUMBER_WARN and severity_number != SEVERITY_NUMBER_UNSPECIFIED'
        - 'IsMatch(body, "password")'`;

for (const transport of ['grpc', 'http/protobuf']) {
    test(`OTTL conditions keep exactly the expected items (${transport})`, async (t) => {
        const spans = await makeSpans();
        const data = { spans, metrics: await makeMetrics(), logs: await makeLogs() };
        const got = await run(t, transport, OTTL, data);

        // Spans: health checks and cache lookups whose number ends in 0 or 5 go; the noise
        // events of the others go, their other events stay.
        const want = new Map();
        for (const s of spans) {
            const drop = s.attributes['http.route'] === '/health' ||
                (s.kind === api.SpanKind.INTERNAL && /^cache\.get [0-9]*[05]$/.test(s.name));
            if (!drop) {
                want.set(s.spanContext().spanId, {
                    name: s.name, events: s.events.filter((e) => e.name !== 'noise').map((e) => e.name),
                });
            }
        }
        assert.ok(want.size > 0 && want.size < spans.length, 'the data must keep some and drop some');
        assert.deepEqual(spansById(got.spans), want);
        for (const { resource } of got.spans) {
            assert.ok(['checkout', 'cart'].includes(attr(resource.attributes, 'service.name')));
        }

        // Metrics: drop.me goes whole; env=test points go; the rest stays.
        assert.deepEqual(pointKeys(got.metrics),
                         expectedPoints(data.metrics, (name, a) => name !== 'drop.me' && a.env !== 'test'));

        // Logs: below WARN (but not unspecified) and anything mentioning a password go.
        const wantLogs = LEVELS.map(([level, body], seq) => ({ level, body, seq }))
            .filter(({ level, body }) => {
                const n = apiLogs.SeverityNumber[level];
                return !((n < apiLogs.SeverityNumber.WARN && n !== 0) || body.includes('password'));
            })
            .map(({ seq }) => seq);
        assert.deepEqual(got.logs.map(({ item }) => attr(item.attributes, 'seq')), wantLogs);
    });
}

test('legacy include/exclude: the same items as otelcol keeps', async (t) => {
    const spans = await makeSpans();
    const data = { spans, metrics: await makeMetrics(), logs: await makeLogs() };
    const got = await run(t, 'grpc', `    spans:
      include:
        match_type: strict
        services: [checkout]
      exclude:
        match_type: regexp
        span_names: ['^GET /(health|metrics)$']
        attributes:
          - {key: http.status_code, value: '5..'}
    metrics:
      exclude:
        match_type: regexp
        metric_names: ['^http\\.lat']
    logs:
      include:
        severity_number: {min: WARN, match_undefined: true}
      exclude:
        match_type: strict
        bodies: [disk full]`, data);

    // Spans: checkout's only, minus its health and metrics endpoints answered with a 5xx.
    const want = new Map();
    for (const s of spans) {
        const svc = s.resource.attributes['service.name'];
        const dropped = svc !== 'checkout' ||
            (/^GET \/(health|metrics)$/.test(s.name) && s.attributes['http.status_code'] === 500);
        if (!dropped) {
            want.set(s.spanContext().spanId, { name: s.name, events: s.events.map((e) => e.name) });
        }
    }
    assert.deepEqual(spansById(got.spans), want);
    assert.deepEqual(pointKeys(got.metrics), expectedPoints(data.metrics, (name) => name !== 'http.latency'));
    const wantLogs = LEVELS.map(([level, body], seq) => ({ level, body, seq }))
        .filter(({ level, body }) => {
            const n = apiLogs.SeverityNumber[level];
            return (n === 0 || n >= apiLogs.SeverityNumber.WARN) && body !== 'disk full';
        })
        .map(({ seq }) => seq);
    assert.deepEqual(got.logs.map(({ item }) => attr(item.attributes, 'seq')), wantLogs);
});

test('error_mode propagate: a batch whose evaluation fails is refused as retryable (503)', async (t) => {
    const c = await startCollector({ yaml: filterYaml(`    traces:
      span: ['Len(attributes["seq"]) > 3']`) });
    t.after(() => c.kill());
    const res = await fetch(`${c.httpUrl}/v1/traces`, {
        method: 'POST', headers: { 'content-type': 'application/x-protobuf' },
        body: tracesProto('no seq attribute').bytes,
    });
    await res.arrayBuffer();
    assert.equal(res.status, 503);
    await c.stop();
    assert.equal(flattenSpans(c.output().resourceSpans).length, 0);
    assert.match(c.stderr, /failed processing traces: condition "Len\(attributes\["seq"\]\) > 3": Len: the target must be/);
});

// Bodies of 8 KiB and more are decoded on a worker, where the pipeline's leading filter then
// runs too (src/offloop.c): the same verdicts, and the run's refusal is still the answer.
async function postLarge(c, name) {
    const res = await fetch(`${c.httpUrl}/v1/traces`, {
        method: 'POST', headers: { 'content-type': 'application/x-protobuf' },
        body: tracesProto(name, { padBytes: 12000 }).bytes,
    });
    await res.arrayBuffer();
    return res.status;
}

test('large HTTP bodies: the filter runs on the decoding worker with the same verdicts', async (t) => {
    const c = await startCollector({ yaml: filterYaml(`    traces:
      span: ['name == "drop-me"']`) });
    t.after(() => c.kill());
    assert.equal(await postLarge(c, 'drop-me'), 200);
    assert.equal(await postLarge(c, 'keep'), 200);
    await c.stop();
    assert.deepEqual(flattenSpans(c.output().resourceSpans).map((s) => s.item.name), ['keep']);
});

test('large HTTP bodies: a refusal of the filter run on the worker is the answer (503)', async (t) => {
    const c = await startCollector({ yaml: filterYaml(`    traces:
      span: ['Len(attributes["seq"]) > 3']`) });
    t.after(() => c.kill());
    assert.equal(await postLarge(c, 'no seq attribute'), 503);
    await c.stop();
    assert.equal(flattenSpans(c.output().resourceSpans).length, 0);
    assert.match(c.stderr, /failed processing traces: condition "Len\(attributes\["seq"\]\) > 3"/);
});
