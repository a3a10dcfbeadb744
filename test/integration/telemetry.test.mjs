// telemetry.test.mjs: the collector's own metrics (service::telemetry::metrics), scraped as
// Prometheus scrapes otelcol's :8888. Spans from the JS SDK go over gRPC and HTTP into a
// collector whose otlp exporter feeds a second collector; the first one's /metrics must count
// exactly what was sent, under otelcol's names and labels, pass promtool's lint, and follow
// the configured level; the config forms otelcol accepts (address, readers) work and the ones
// otelmon does not implement are refused with their position.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { describe, test } from 'node:test';

import {
    flattenSpans, freePorts, readFileOutput, requireJs, runOtelmon, startCollector, tempDir,
    TIME_SCALE, waitFor,
} from '../js/harness.mjs';

const api = requireJs('@opentelemetry/api');
const { resourceFromAttributes } = requireJs('@opentelemetry/resources');
const { BasicTracerProvider, SimpleSpanProcessor } = requireJs('@opentelemetry/sdk-trace-base');
const { OTLPTraceExporter: GrpcExporter } = requireJs('@opentelemetry/exporter-trace-otlp-grpc');
const { OTLPTraceExporter: HttpExporter } = requireJs('@opentelemetry/exporter-trace-otlp-proto');

for (const k of Object.keys(process.env)) {
    if (k.startsWith('OTEL_')) {
        delete process.env[k];
    }
}

/** Parse a text-format scrape into {name: [{labels, value}]} and {name: type}. */
function parseScrape(text) {
    const series = {};
    const types = {};
    for (const line of text.split('\n')) {
        const t = /^# TYPE (\S+) (\S+)$/.exec(line);
        if (t) {
            types[t[1]] = t[2];
            continue;
        }
        if (line === '' || line.startsWith('#')) {
            continue;
        }
        const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
        assert.ok(m, `a sample line: ${line}`);
        const labels = {};
        for (const [, k, v] of (m[2] ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) {
            labels[k] = v;
        }
        (series[m[1]] ??= []).push({ labels, value: Number(m[3]) });
    }
    return { series, types };
}

/** The value of name{want...} (labels not in want are not compared); undefined if absent. */
function valueOf(scrape, name, want = {}) {
    const hits = (scrape.series[name] ?? []).filter((s) => Object.entries(want).every(([k, v]) => s.labels[k] === v));
    assert.ok(hits.length <= 1, `one series of ${name} ${JSON.stringify(want)}, got ${hits.length}`);
    return hits[0]?.value;
}

async function scrape(port) {
    const res = await fetch(`http://127.0.0.1:${port}/metrics`);
    assert.equal(res.status, 200);
    assert.match(res.headers.get('content-type'), /^text\/plain; version=0\.0\.4/);
    return res.text();
}

async function sendSpans(exporter, n, name) {
    const provider = new BasicTracerProvider({
        resource: resourceFromAttributes({ 'service.name': 'telemetry-test' }),
        spanProcessors: [new SimpleSpanProcessor(exporter)],
    });
    const tracer = provider.getTracer('telemetry');
    for (let i = 0; i < n; i++) {
        tracer.startSpan(`${name}-${i}`, { kind: api.SpanKind.SERVER }).end();
    }
    await provider.forceFlush();
    await provider.shutdown();
}

/** otlp receiver -> batch -> otlp exporter to `to` (a collector's gRPC port). */
const relayYaml = (to, telemetry = '') => (o) => `receivers:
  otlp:
    protocols:
      grpc: {endpoint: 127.0.0.1:${o.grpcPort}}
      http: {endpoint: 127.0.0.1:${o.httpPort}}
processors:
  batch:
    timeout: 20ms
exporters:
  otlp:
    endpoint: 127.0.0.1:${to}
    tls: {insecure: true}
service:
${telemetry}  pipelines:
    traces:
      receivers: [otlp]
      processors: [batch]
      exporters: [otlp]
`;

describe('the collector\'s own metrics', () => {
    test('count what the JS SDK sent over gRPC and HTTP, under otelcol\'s names, and pass promtool', async (t) => {
        const sink = await startCollector();
        t.after(() => sink.kill());
        const relay = await startCollector({ yaml: relayYaml(sink.grpcPort) });
        t.after(() => relay.kill());
        await relay.check(async () => {
            assert.ok(relay.telemetryPort > 0, 'the endpoint\'s port in the log');
            await sendSpans(new GrpcExporter({ url: `http://127.0.0.1:${relay.grpcPort}` }), 7, 'grpc');
            await sendSpans(new HttpExporter({ url: `http://127.0.0.1:${relay.httpPort}/v1/traces` }), 5, 'http');
            await waitFor(() => flattenSpans(readFileOutput(sink.outPath).resourceSpans).length >= 12,
                          10000 * TIME_SCALE, '12 spans at the sink');
            let s;
            // The exporter counts a request once its answer is in; wait for that, not a fixed time.
            await waitFor(async () => {
                s = parseScrape(await scrape(relay.telemetryPort));
                return valueOf(s, 'otelcol_exporter_sent_spans_total', { exporter: 'otlp' }) === 12;
            }, 10000 * TIME_SCALE, 'otelcol_exporter_sent_spans_total 12');
            assert.equal(valueOf(s, 'otelcol_receiver_accepted_spans_total', { receiver: 'otlp', transport: 'grpc' }), 7);
            assert.equal(valueOf(s, 'otelcol_receiver_accepted_spans_total', { receiver: 'otlp', transport: 'http' }), 5);
            assert.equal(valueOf(s, 'otelcol_receiver_refused_spans_total', { receiver: 'otlp', transport: 'grpc' }), 0);
            assert.equal(valueOf(s, 'otelcol_exporter_send_failed_spans_total', { exporter: 'otlp' }), 0);
            assert.equal(valueOf(s, 'otelcol_exporter_queue_capacity', { exporter: 'otlp' }), 1000);
            assert.equal(s.types.otelcol_exporter_sent_spans_total, 'counter');
            assert.equal(s.types.otelcol_process_memory_rss_bytes, 'gauge');
            // Every span went through batch: the histogram's sum is the span count.
            assert.equal(valueOf(s, 'otelcol_processor_batch_batch_send_size_sum', { processor: 'batch' }), 12);
            const sends = valueOf(s, 'otelcol_processor_batch_batch_send_size_count', { processor: 'batch' });
            assert.ok(sends >= 1 && sends <= 12, `${sends} batches sent`);
            assert.equal(valueOf(s, 'otelcol_processor_batch_batch_send_size_bucket', { processor: 'batch', le: '+Inf' }), sends);
            assert.ok(valueOf(s, 'otelcol_process_uptime_seconds_total') > 0);
            assert.ok(valueOf(s, 'otelcol_process_cpu_seconds_total') > 0);
            assert.ok(valueOf(s, 'otelcol_process_memory_rss_bytes') > 1e6);
            assert.ok(valueOf(s, 'otelmon_arena_bytes_held') >= 0);
            // otelcol's resource labels on every series.
            for (const [name, list] of Object.entries(s.series)) {
                for (const one of list) {
                    assert.equal(one.labels.service_name, 'otelmon', name);
                    assert.match(one.labels.service_instance_id, /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/, name);
                }
            }
            const lint = spawnSync('promtool', ['check', 'metrics'], { input: await scrape(relay.telemetryPort), encoding: 'utf8' });
            assert.equal(lint.error, undefined, 'promtool runs (Debian prometheus, installed by deploy/install-deps.sh --test)');
            assert.equal(lint.status, 0, `promtool: ${lint.stdout}${lint.stderr}`);
        });
    });

    test('level basic serves the receivers\', exporters\' and process metrics only; resource labels follow the config', async (t) => {
        const tel = '  telemetry:\n    metrics:\n      level: basic\n      address: 127.0.0.1:0\n' +
            '    resource:\n      service.name: etl-gateway\n      service.version: null\n';
        const c = await startCollector({ yaml: relayYaml(1, tel) });
        t.after(() => c.kill());
        await c.check(async () => {
            const s = parseScrape(await scrape(c.telemetryPort));
            assert.equal(valueOf(s, 'otelcol_receiver_accepted_spans_total', { transport: 'grpc' }), 0);
            assert.ok(valueOf(s, 'otelcol_process_uptime_seconds_total') > 0);
            assert.equal(s.series.otelcol_processor_batch_batch_send_size_count, undefined);
            assert.equal(s.series.otelmon_arena_bytes_held, undefined);
            const one = s.series.otelcol_process_uptime_seconds_total[0].labels;
            assert.equal(one.service_name, 'etl-gateway');
            assert.equal(one.service_version, undefined, 'a null resource value removes the label');
        });
    });

    test('the readers form serves on its host and port; level none serves nothing', async (t) => {
        const [port] = await freePorts(1);
        const tel = '  telemetry:\n    metrics:\n      readers:\n        - pull:\n            exporter:\n' +
            `              prometheus:\n                host: 127.0.0.1\n                port: ${port}\n`;
        const c = await startCollector({ yaml: relayYaml(1, tel) });
        t.after(() => c.kill());
        await c.check(async () => {
            assert.equal(c.telemetryPort, port);
            const s = parseScrape(await scrape(port));
            assert.ok(valueOf(s, 'otelcol_process_uptime_seconds_total') > 0);
        });
        await c.stop();
        const none = await startCollector({
            yaml: relayYaml(1, `  telemetry:\n    metrics:\n      level: none\n      address: 127.0.0.1:${port}\n`),
        });
        t.after(() => none.kill());
        await none.check(async () => {
            assert.doesNotMatch(none.stderr, /Serving the collector's own metrics/);
            const refused = await new Promise((resolve) => {
                const sock = net.connect(port, '127.0.0.1');
                sock.once('connect', () => { sock.destroy(); resolve(false); });
                sock.once('error', () => resolve(true));
            });
            assert.ok(refused, `nothing listens on ${port} at level none`);
        });
    });

    test('an address in use stops the start with a message, as otelcol', async (t) => {
        const server = net.createServer();
        await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
        t.after(() => server.close());
        const port = server.address().port;
        const c = await startCollector({
            ready: false,
            yaml: relayYaml(1, `  telemetry:\n    metrics:\n      address: 127.0.0.1:${port}\n`),
        });
        t.after(() => c.kill());
        const res = await Promise.race([c.exited, new Promise((r) => setTimeout(r, 10000 * TIME_SCALE, null))]);
        assert.ok(res !== null, `the collector did not stop\n${c.describe()}`);
        assert.notEqual(res.code, 0, c.describe());
        assert.match(c.stderr, new RegExp(`service::telemetry::metrics: .*127\\.0\\.0\\.1:${port}`), c.describe());
    });

    test('forms otelmon does not implement are config errors at their position', () => {
        const dir = tempDir();
        // [service::telemetry::metrics lines, the text where the error points, the message]
        const cases = [
            ['      readers:\n        - periodic:\n            exporter: {otlp: {endpoint: x}}\n', 'periodic:',
             /'service::telemetry::metrics::readers::0::periodic': periodic readers .* not supported/],
            ['      address: 127.0.0.1:8888\n      readers:\n        - pull: {exporter: {prometheus: {port: 1}}}\n',
             'address:', /'service::telemetry::metrics': address and readers cannot both be set/],
            ['      views: [{selector: {instrument_name: x}}]\n', '[{', /views are not supported/],
            ['      level: verbose\n', 'verbose', /unknown level/],
            ['      nope: 1\n', 'nope', /'service::telemetry::metrics' has invalid keys: nope/],
        ];
        for (const [metrics, at, want] of cases) {
            const file = path.join(dir, 'c.yaml');
            const text = relayYaml(1, `  telemetry:\n    metrics:\n${metrics}`)({ grpcPort: 0, httpPort: 0 });
            writeFileSync(file, text);
            const lines = text.split('\n');
            const line = lines.findIndex((l, i) => i > lines.indexOf('    metrics:') && l.includes(at));
            const col = lines[line].indexOf(at) + 1;
            const r = runOtelmon(['validate', '--config', file]);
            assert.equal(r.code, 1, `${metrics}: ${r.stderr}`);
            assert.ok(r.stderr.includes(`${file}:${line + 1}:${col}: `), `${line + 1}:${col} in ${r.stderr}`);
            assert.match(r.stderr, want, metrics);
        }
        // A pull reader must say its port.
        const file = path.join(dir, 'c.yaml');
        writeFileSync(file, relayYaml(1, '  telemetry:\n    metrics:\n      readers:\n' +
            '        - pull: {exporter: {prometheus: {host: localhost}}}\n')({ grpcPort: 0, httpPort: 0 }));
        const r = runOtelmon(['validate', '--config', file]);
        assert.equal(r.code, 1, r.stderr);
        assert.match(r.stderr, /port/);
    });
});
