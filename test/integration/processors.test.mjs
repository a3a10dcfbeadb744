// processors.test.mjs: the `attributes`, `resource` and `memory_limiter` processors, seen from
// outside.
//   - attributes and resource: the OpenTelemetry JS SDK sends known spans, metrics and logs
//     through them into the `file` exporter; every item of the output is compared with what
//     the SDK sent, changed as otelcol's processors change it (computed here, independently:
//     SHA-256 with node:crypto, the regexp with JS's engine), kept as it was where
//     include/exclude leave it alone.
//   - memory_limiter: a flood against a slow backend with limit_mib 64: the collector's RSS
//     stays under the limit plus a fixed overhead (FIXED_OVERHEAD_MIB, documented in the
//     README), every refusal is retryable with otelcol's message, and everything accepted
//     arrives once.
//   - the example configs (configs/attributes-resource.yaml, configs/memory-limiter.yaml) run
//     as written, on free loopback ports: a span gets their actions, or reaches their backend.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { describe, test } from 'node:test';

import {
    flattenLogs, flattenMetrics, flattenSpans, requireJs, startCollector, TIME_SCALE,
} from '../js/harness.mjs';
import { canonical, parseJsonBytes, stableStringify } from '../js/otlp_json.mjs';
import {
    assertOnce, driveLoad, eventually, instrumented, post, rssKb, sinkYaml, spanNamesIn,
    startGrpcBackend, waitDelivered, withCollectors,
} from '../js/relay.mjs';
import { tracesProto } from '../js/otlp_build.mjs';

const grpc = requireJs('@grpc/grpc-js');
const api = requireJs('@opentelemetry/api');
const apiLogs = requireJs('@opentelemetry/api-logs');
const { ExportResultCode } = requireJs('@opentelemetry/core');
const { resourceFromAttributes } = requireJs('@opentelemetry/resources');
const { BasicTracerProvider, InMemorySpanExporter, SimpleSpanProcessor } = requireJs('@opentelemetry/sdk-trace-base');
const { MeterProvider, MetricReader } = requireJs('@opentelemetry/sdk-metrics');
const { LoggerProvider, InMemoryLogRecordExporter, SimpleLogRecordProcessor } = requireJs('@opentelemetry/sdk-logs');
const { JsonTraceSerializer, JsonMetricsSerializer, JsonLogsSerializer } = requireJs('@opentelemetry/otlp-transformer');
const { OTLPTraceExporter } = requireJs('@opentelemetry/exporter-trace-otlp-grpc');
const { OTLPMetricExporter } = requireJs('@opentelemetry/exporter-metrics-otlp-proto');
const { OTLPLogExporter } = requireJs('@opentelemetry/exporter-logs-otlp-grpc');

for (const k of Object.keys(process.env)) {
    if (k.startsWith('OTEL_')) {
        delete process.env[k];
    }
}
api.diag.setLogger(new api.DiagConsoleLogger(), api.DiagLogLevel.WARN);

const S = (ms) => ms * TIME_SCALE;

// ---------------------------------------------------------------------------------------------
// attributes and resource

const PIPELINE = (signal, attrs) => `    ${signal}:\n      receivers: [otlp]\n` +
    `      processors: [resource, ${attrs}]\n      exporters: [file]\n`;

/** The processors under test; the expectations below are written from the same rules. */
const processorsYaml = (o) => 'receivers:\n  otlp:\n    protocols:\n' +
    `      grpc:\n        endpoint: 127.0.0.1:${o.grpcPort}\n` +
    `      http:\n        endpoint: 127.0.0.1:${o.httpPort}\n` +
    'processors:\n' +
    '  resource:\n' +
    '    attributes:\n' +
    '      - {key: deployment.environment, value: prod, action: upsert}\n' +
    '      - {key: host.secret, action: delete}\n' +
    '      - {key: region, from_attribute: cloud.region, default_value: eu-west-1, action: insert}\n' +
    '  attributes/traces:\n' +
    '    actions: &actions\n' +
    '      - {key: env, value: test, action: upsert}\n' +
    '      - {key: password, action: delete}\n' +
    '      - {key: user.email, action: hash}\n' +
    "      - {key: http.url, pattern: '^(?P<url_scheme>[a-z]+)://(?P<url_host>[^/]+)', action: extract}\n" +
    '      - {key: http.status_code, action: convert, converted_type: int}\n' +
    '      - {key: owner, from_attribute: team, action: insert}\n' +
    '      - {key: retries, value: 3, action: update}\n' +
    "      - {pattern: '^tmp\\.', action: delete}\n" +
    '    exclude:\n' +
    '      match_type: strict\n' +
    '      span_names: [health]\n' +
    '  attributes/metrics:\n' +
    '    actions: *actions\n' +
    '    exclude:\n' +
    '      match_type: regexp\n' +
    "      metric_names: ['^skip\\.']\n" +
    '  attributes/logs:\n' +
    '    actions: *actions\n' +
    '    include:\n' +
    '      log_severity_number: {min: 13}\n' +
    'exporters:\n' +
    `  file:\n    path: ${JSON.stringify(o.outPath)}\n` +
    'service:\n  pipelines:\n' +
    PIPELINE('traces', 'attributes/traces') + PIPELINE('metrics', 'attributes/metrics') +
    PIPELINE('logs', 'attributes/logs');

/** What each item's attributes carry before the processors: one of each case. */
const ITEM_ATTRS = {
    env: 'dev', password: 'hunter2', 'user.email': 'alice@example.com',
    'http.url': 'https://example.com:8443/orders?id=1', 'http.status_code': '503', team: 'payments',
    retries: 1, 'tmp.a': 1, 'tmp.b': 'x', keep: true,
};

// OTLP JSON attribute lists, changed as the processors change them.
const get = (attrs, k) => attrs.find((a) => a.key === k);
const del = (attrs, k) => attrs.filter((a) => a.key !== k);
const put = (attrs, k, value) => [...del(attrs, k), { key: k, value }];
const str = (s) => ({ stringValue: s });

/** attraction's actions above, on one item's attributes. */
function expectedItemAttrs(attrs) {
    let a = put(attrs, 'env', str('test'));
    a = del(a, 'password');
    const email = get(a, 'user.email');
    if (email) {
        a = put(a, 'user.email', str(createHash('sha256').update(email.value.stringValue, 'utf8').digest('hex')));
    }
    const url = get(a, 'http.url')?.value.stringValue;
    const m = url !== undefined ? /^([a-z]+):\/\/([^/]+)/.exec(url) : null;
    if (m) {
        a = put(put(a, 'url_scheme', str(m[1])), 'url_host', str(m[2]));
    }
    const code = get(a, 'http.status_code');
    if (code?.value.stringValue !== undefined && /^[+-]?\d+$/.test(code.value.stringValue)) {
        a = put(a, 'http.status_code', { intValue: String(BigInt(code.value.stringValue)) });
    }
    const team = get(a, 'team');
    if (team && !get(a, 'owner')) {
        a = put(a, 'owner', team.value);
    }
    if (get(a, 'retries')) {
        a = put(a, 'retries', { intValue: '3' });
    }
    return a.filter((x) => !x.key.startsWith('tmp.'));
}

function expectedResourceAttrs(attrs) {
    let a = put(attrs, 'deployment.environment', str('prod'));
    a = del(a, 'host.secret');
    if (!get(a, 'region')) {
        a = put(a, 'region', get(a, 'cloud.region')?.value ?? str('eu-west-1'));
    }
    return a;
}

/** Attributes as a map (the processors may reorder a list; OTLP gives order no meaning). */
const attrMap = (attrs) => Object.fromEntries(canonical(attrs ?? []).map((x) => [x.key, x.value]));

/** An item or resource in canonical form with its attributes as a map. */
function canonItem(x, where, strict) {
    const c = canonical(x, where, strict);
    if (c.attributes || x.attributes) {
        c.attributes = attrMap(x.attributes);
    }
    return c;
}

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
            assert.fail(`${this.list.length} ${what} differ from what was expected:\n\n${this.list.slice(0, 8).join('\n\n')}`);
        }
    }
}

/** Each expected item arrived once, equal to what is expected (resource included). */
function compareItems(expected, actual, keyOf, what) {
    const bad = new Mismatches();
    const byKey = new Map(actual.map((a) => [keyOf(a.item), a]));
    bad.check(() => assert.equal(actual.length, expected.length, `${what}s in the output`));
    for (const e of expected) {
        const k = keyOf(e.item);
        const a = byKey.get(k);
        bad.check(() => assert.ok(a, `${what} ${k} is missing`));
        if (!a) {
            continue;
        }
        bad.check(() => assert.deepEqual(canonItem(a.item, `${what} ${k}`, true), canonItem(e.item), `${what} ${k}`));
        bad.check(() => assert.deepEqual(canonItem(a.resource, k, true), canonItem(e.resource), `${what} ${k}: resource`));
    }
    bad.done(`${what}s`);
}

const RESOURCES = [
    { 'service.name': 'checkout', 'host.secret': 's3cr3t', 'cloud.region': 'us-east-2' },
    { 'service.name': 'billing', 'deployment.environment': 'staging' },
];

async function makeSpans(resource) {
    const mem = new InMemorySpanExporter();
    const provider = new BasicTracerProvider({ resource, spanProcessors: [new SimpleSpanProcessor(mem)] });
    const tracer = provider.getTracer('proc-test', '1.0.0');
    const root = tracer.startSpan('GET /orders', { kind: api.SpanKind.SERVER, attributes: ITEM_ATTRS });
    root.addEvent('ev', { password: 'in-an-event' }); // events are not the processor's
    const ctx = api.trace.setSpan(api.ROOT_CONTEXT, root);
    tracer.startSpan('health', { attributes: ITEM_ATTRS }, ctx).end();
    tracer.startSpan('plain', { attributes: { 'http.status_code': 'n/a', owner: 'ops', team: 'x' } }, ctx).end();
    tracer.startSpan('empty', {}, ctx).end();
    root.end();
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
    const provider = new MeterProvider({ resource, readers: [reader] });
    const meter = provider.getMeter('proc-test', '1.0.0');
    meter.createCounter('orders').add(3, ITEM_ATTRS);
    meter.createCounter('orders').add(1, { keep: false });
    meter.createHistogram('latency').record(12, ITEM_ATTRS);
    meter.createGauge('skip.temperature').record(21, ITEM_ATTRS);
    const { resourceMetrics, errors } = await reader.collect();
    assert.deepEqual(errors, []);
    await provider.shutdown();
    return resourceMetrics;
}

let logSeq = 0;

async function makeLogs(resource) {
    const mem = new InMemoryLogRecordExporter();
    const provider = new LoggerProvider({ resource, processors: [new SimpleLogRecordProcessor({ exporter: mem })] });
    const logger = provider.getLogger('proc-test', '1.0.0');
    logger.emit({ severityNumber: apiLogs.SeverityNumber.ERROR, body: 'failed', attributes: { seq: ++logSeq, ...ITEM_ATTRS } });
    logger.emit({ severityNumber: apiLogs.SeverityNumber.INFO, body: 'ok', attributes: { seq: ++logSeq, ...ITEM_ATTRS } });
    logger.emit({ body: 'no severity', attributes: { seq: ++logSeq, ...ITEM_ATTRS } });
    logger.emit({ severityNumber: apiLogs.SeverityNumber.WARN, body: 'slow', attributes: { seq: ++logSeq, team: 'db' } });
    await provider.forceFlush();
    const records = mem.getFinishedLogRecords();
    await provider.shutdown();
    return records;
}

function exportWith(exporter, items, what) {
    return new Promise((resolve, reject) => {
        exporter.export(items, (res) => (res.code === ExportResultCode.SUCCESS ? resolve()
            : reject(new Error(`${what}: the SDK exporter reported failure: ${res.error}`))));
    });
}

/** The SDK's request as OTLP JSON, with the changes the processors make applied by `change`
 * (an item's attributes) to the items `applies` selects. */
function expectedRequest(json, listKey, itemsOf, applies) {
    for (const r of json[listKey]) {
        r.resource = { ...r.resource, attributes: expectedResourceAttrs(r.resource?.attributes ?? []) };
        for (const { item, owner } of itemsOf(r)) {
            if (applies(item, owner)) {
                item.attributes = expectedItemAttrs(item.attributes ?? []);
            }
        }
    }
    return json;
}

const spansOf = (rs) => rs.scopeSpans.flatMap((ss) => ss.spans.map((item) => ({ item })));
const logsOf = (rl) => rl.scopeLogs.flatMap((sl) => sl.logRecords.map((item) => ({ item })));
const pointsOf = (rm) => rm.scopeMetrics.flatMap((sm) => sm.metrics.flatMap((m) => {
    const body = m.sum ?? m.gauge ?? m.histogram ?? m.exponentialHistogram ?? m.summary;
    return body.dataPoints.map((item) => ({ item, owner: m }));
}));

/** A metric with its points keyed by the points' original seq (their attribute "keep" and
 * value), so that output and expectation line up. */
function metricKey(m) {
    return m.name;
}

function sortPoints(metric) {
    const c = canonItem(metric);
    for (const kind of ['sum', 'gauge', 'histogram']) {
        if (c[kind]?.dataPoints) {
            c[kind].dataPoints = metric[kind].dataPoints.map((p) => canonItem(p))
                .sort((x, y) => stableStringify(x).localeCompare(stableStringify(y)));
        }
    }
    return c;
}

describe('attributes and resource', () => {
    test('the JS SDK\'s spans, metrics and logs go through resource and attributes into file: every item ' +
         'changed as otelcol changes it, or left as it was where include/exclude say so', { timeout: S(60000) }, async (t) => {
        const c = await startCollector({ yaml: processorsYaml });
        t.after(() => c.kill());
        await c.check(async () => {
            const traces = new OTLPTraceExporter({ url: `http://${c.grpcAddress}`, timeoutMillis: 15000 });
            const metrics = new OTLPMetricExporter({ url: `${c.httpUrl}/v1/metrics`, timeoutMillis: 15000 });
            const logs = new OTLPLogExporter({ url: `http://${c.grpcAddress}`, timeoutMillis: 15000 });
            const sent = { spans: [], metrics: [], logs: [] };
            for (const attrs of RESOURCES) {
                const resource = resourceFromAttributes(attrs);
                const spans = await makeSpans(resource);
                const rm = await makeMetrics(resource);
                const recs = await makeLogs(resource);
                await exportWith(traces, spans, 'traces');
                await exportWith(metrics, rm, 'metrics');
                await exportWith(logs, recs, 'logs');
                sent.spans.push(...spans);
                sent.metrics.push(rm);
                sent.logs.push(...recs);
            }
            await Promise.all([traces.shutdown(), metrics.shutdown(), logs.shutdown()]);
            await c.stop();
            const out = c.output();

            const expSpans = expectedRequest(parseJsonBytes(JsonTraceSerializer.serializeRequest(sent.spans)),
                                             'resourceSpans', spansOf, (s) => s.name !== 'health');
            compareItems(flattenSpans(expSpans.resourceSpans), flattenSpans(out.resourceSpans),
                         (s) => `${s.spanId}`, 'span');

            const expLogs = expectedRequest(parseJsonBytes(JsonLogsSerializer.serializeRequest(sent.logs)),
                                            'resourceLogs', logsOf, (l) => (l.severityNumber ?? 0) >= 13);
            const seqOf = (l) => `${attrMap(l.attributes).seq?.intValue}`;
            compareItems(flattenLogs(expLogs.resourceLogs), flattenLogs(out.resourceLogs), seqOf, 'log record');

            // Metrics: one request per resource; compare metric by metric within each resource.
            const expMetrics = sent.metrics.flatMap((rm) => expectedRequest(
                parseJsonBytes(JsonMetricsSerializer.serializeRequest(rm)), 'resourceMetrics', pointsOf,
                (p, m) => !m.name.startsWith('skip.')).resourceMetrics);
            const svc = (r) => attrMap(r.attributes)['service.name']?.stringValue;
            const key = (x) => `${svc(x.resource)}/${metricKey(x.item)}`;
            const got = new Map(flattenMetrics(out.resourceMetrics).map((x) => [key(x), x]));
            const bad = new Mismatches();
            const want = flattenMetrics(expMetrics);
            bad.check(() => assert.equal(got.size, want.length, 'metrics in the output'));
            for (const e of want) {
                const a = got.get(key(e));
                bad.check(() => assert.ok(a, `metric ${key(e)} is missing`));
                if (a) {
                    bad.check(() => assert.deepEqual(sortPoints(a.item), sortPoints(e.item), `metric ${key(e)}`));
                    bad.check(() => assert.deepEqual(canonItem(a.resource), canonItem(e.resource), `metric ${key(e)}: resource`));
                }
            }
            bad.done('metrics');
        });
    });
});

// ---------------------------------------------------------------------------------------------
// memory_limiter

/** What the process holds besides the data memory_limiter counts: the program and its
 * libraries (about 13 MiB idle, gRPC's threads included), the requests being read and sent,
 * the allocator's slack. The README documents this figure. Measured here: peaks of 79 MiB
 * with 6 clients sending 400 KB requests (15 MiB over limit_mib), 89 MiB with 16 clients. */
const FIXED_OVERHEAD_MIB = 32;

const floodYaml = (backend) => (o) => 'receivers:\n  otlp:\n    protocols:\n' +
    `      grpc:\n        endpoint: 127.0.0.1:${o.grpcPort}\n` +
    `      http:\n        endpoint: 127.0.0.1:${o.httpPort}\n` +
    'processors:\n' +
    '  memory_limiter:\n    check_interval: 1s\n    limit_mib: 64\n' +
    'exporters:\n' +
    `  otlp:\n    endpoint: ${backend}\n    tls: {insecure: true}\n    timeout: 120s\n` +
    '    retry_on_failure: {initial_interval: 100ms, max_interval: 500ms, max_elapsed_time: 300s}\n' +
    'service:\n  pipelines:\n' +
    '    traces:\n      receivers: [otlp]\n      processors: [memory_limiter]\n      exporters: [otlp]\n';

describe('memory_limiter', () => {
    test('a flood against a slow backend with limit_mib 64: RSS stays under the limit plus a fixed overhead, ' +
         'refusals are retryable with otelcol\'s message, nothing accepted is lost', { timeout: S(240000) }, async (t) => {
        const b = await startCollector({ yaml: sinkYaml() });
        t.after(() => b.kill());
        // The backend takes 300 ms per call: with the exporter's 10 consumers, about 13 MB/s of
        // 400 KB requests, far less than the flood brings.
        let slow = true;
        const be = await startGrpcBackend({
            decide: async () => {
                if (slow) {
                    await new Promise((r) => setTimeout(r, 300));
                }
                return { forward: b.grpcAddress };
            },
        });
        t.after(() => be.close());
        const a = await startCollector({ yaml: floodYaml(be.address) });
        t.after(() => a.kill());
        await withCollectors({ A: a, B: b }, async () => {
            const idleRss = rssKb(a.proc.pid);
            // The message of a refusal, seen by a gRPC client.
            const client = new grpc.Client(a.grpcAddress, grpc.credentials.createInsecure());
            t.after(() => client.close());
            const details = [];
            const probe = setInterval(() => {
                client.makeUnaryRequest('/opentelemetry.proto.collector.trace.v1.TraceService/Export',
                                        (x) => x, (x) => x, tracesProto('probe', { padBytes: 400000 }).bytes,
                                        new grpc.Metadata(), { deadline: Date.now() + S(30000) },
                                        (err) => { if (err) details.push(`${err.code} ${err.details}`); });
            }, 200);
            t.after(() => clearInterval(probe));
            const { accepted, refused, otherFailures, maxRss } = await driveLoad(t, a, {
                workers: 6, ms: S(8000), padBytes: 400000, viaGrpc: (w) => w % 2 === 1, prefix: 'ml',
            });
            clearInterval(probe);
            t.diagnostic(`idle RSS ${idleRss} KiB; peak ${maxRss} KiB; ${accepted.length} accepted, ` +
                         `${refused.length} refused`);
            assert.deepEqual(otherFailures.slice(0, 5), [], 'the only failures are retryable refusals');
            assert.ok(refused.some((r) => r.via === 'http' && r.code === 503), 'HTTP requests refused with 503');
            assert.ok(refused.some((r) => r.via === 'grpc' && r.code === grpc.status.UNAVAILABLE),
                      'gRPC calls refused with UNAVAILABLE');
            assert.ok(details.some((d) => d === `${grpc.status.UNAVAILABLE} data refused due to high memory usage`),
                      `otelcol's message in the refusals: ${[...new Set(details)].slice(0, 3).join('; ')}`);
            const boundKb = (instrumented(a.proc.pid) ? 1024 : 64 + FIXED_OVERHEAD_MIB) * 1024;
            assert.ok(maxRss > 0 && maxRss < boundKb,
                      `A's RSS peaked at ${maxRss} KiB (bound ${boundKb} KiB: limit_mib 64 + ${FIXED_OVERHEAD_MIB} MiB)`);

            // The backend catches up: everything accepted arrives, once; nothing refused does.
            slow = false;
            const after = 'ml.after';
            await eventually(async () => (await post(a.httpPort, '/v1/traces', tracesProto(after).bytes)) === 200,
                             S(60000), 'A accepting again once the backlog drained');
            accepted.push(after);
            await waitDelivered(b, accepted, S(120000), 'every accepted span in B');
            await a.stop(S(30000));
            await b.stop();
            const got = spanNamesIn(b).filter((n) => n !== 'probe');
            assertOnce(got, accepted, `${accepted.length} accepted spans`);
            const refusedNames = new Set(refused.map((r) => r.name));
            assert.deepEqual(got.filter((n) => refusedNames.has(n)), [], 'no refused span was delivered');
        });
    });
});

// ---------------------------------------------------------------------------------------------
// The example configs run (the configs suite validates them)

/** configs/NAME with its listeners on free loopback ports and `edit` applied. */
const exampleYaml = (name, edit) => (o) => edit(readFileSync(new URL(`../../configs/${name}`, import.meta.url), 'utf8')
    .replaceAll('0.0.0.0:4317', `127.0.0.1:${o.grpcPort}`)
    .replaceAll('0.0.0.0:4318', `127.0.0.1:${o.httpPort}`), o);

describe('example configs', () => {
    test('configs/attributes-resource.yaml runs: a span gets the resource and attribute actions', { timeout: S(60000) }, async (t) => {
        // Its debug exporter becomes the file exporter, so that the output can be read.
        const c = await startCollector({
            yaml: exampleYaml('attributes-resource.yaml', (y, o) => y
                .replace(/exporters:\n {2}debug:\n {4}verbosity: basic\n/, `exporters:\n  file:\n    path: ${JSON.stringify(o.outPath)}\n`)
                .replaceAll('exporters: [debug]', 'exporters: [file]')),
        });
        t.after(() => c.kill());
        await c.check(async () => {
            const kvs = (o) => Object.entries(o).map(([key, v]) => ({ key, value: { stringValue: v } }));
            const body = JSON.stringify({ resourceSpans: [{
                resource: { attributes: kvs({ 'service.name': 'checkout', 'k8s-cluster': 'c1' }) },
                scopeSpans: [{ spans: [{
                    traceId: '0102030405060708090a0b0c0d0e0f10', spanId: '0102030405060708', name: 'GET /orders',
                    kind: 2, startTimeUnixNano: '1000', endTimeUnixNano: '2000',
                    attributes: kvs({ 'db.statement': 'SELECT 1', account_email: 'a@b.c', 'http.status_code': '200',
                                      'credentials.token': 't' }),
                }] }],
            }] });
            assert.equal(await post(c.httpPort, '/v1/traces', body, 'application/json'), 200);
            await c.stop();
            const spans = flattenSpans(c.output().resourceSpans);
            assert.equal(spans.length, 1);
            const res = attrMap(spans[0].resource.attributes);
            assert.deepEqual(res, {
                'service.name': { stringValue: 'checkout' }, 'deployment.environment': { stringValue: process.env.DEPLOYMENT_ENV ?? 'production' },
                'k8s.cluster.name': { stringValue: 'c1' }, 'cloud.region': { stringValue: 'eu-west-1' },
            });
            assert.deepEqual(attrMap(spans[0].item.attributes), {
                redacted_span: { boolValue: true }, account_id: { intValue: '2245' },
                account_email: { stringValue: createHash('sha256').update('a@b.c').digest('hex') },
                'http.status_code': { intValue: '200' },
            });
        });
    });

    test('configs/memory-limiter.yaml runs: data passes to its otlp backend', { timeout: S(60000) }, async (t) => {
        const b = await startCollector({ yaml: sinkYaml() });
        t.after(() => b.kill());
        const a = await startCollector({
            yaml: exampleYaml('memory-limiter.yaml', (y) => y.replace('${env:OTLP_BACKEND:-tempo:4317}', b.grpcAddress)),
        });
        t.after(() => a.kill());
        await withCollectors({ A: a, B: b }, async () => {
            assert.equal(await post(a.httpPort, '/v1/traces', tracesProto('through-the-limiter').bytes), 200);
            await waitDelivered(b, ['through-the-limiter'], S(30000), 'the span in the backend');
        });
    });
});
