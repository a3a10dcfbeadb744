// zpages.test.mjs: the zpages extension's pages as a browser shows them. Debian's Chromium
// (headless, installed by deploy/install-deps.sh --test) loads each page from the running
// collector and prints the DOM it built; the test reads the pipelines, components and live
// counters from that DOM after the JS SDK sent spans.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { test } from 'node:test';

import { requireJs, startCollector, tempDir, TIME_SCALE, waitFor } from '../js/harness.mjs';

const api = requireJs('@opentelemetry/api');
const { resourceFromAttributes } = requireJs('@opentelemetry/resources');
const { BasicTracerProvider, SimpleSpanProcessor } = requireJs('@opentelemetry/sdk-trace-base');
const { OTLPTraceExporter } = requireJs('@opentelemetry/exporter-trace-otlp-grpc');

for (const k of Object.keys(process.env)) {
    if (k.startsWith('OTEL_')) {
        delete process.env[k];
    }
}

/** The DOM headless Chromium builds for url (flags as this machine's browser tests need). */
function browserDom(url) {
    const r = spawnSync('chromium', [
        '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
        '--disable-background-networking', '--disable-component-update', '--disable-sync',
        `--user-data-dir=${tempDir('otelmon-chromium-')}`, '--dump-dom', url,
    ], { encoding: 'utf8', timeout: 60000 * TIME_SCALE });
    assert.equal(r.error, undefined, 'chromium runs (Debian chromium, installed by deploy/install-deps.sh --test)');
    assert.equal(r.status, 0, r.stderr);
    return r.stdout;
}

/** The counters cell of a component's row in a pipeline's table, as {accepted: 4, ...}. */
function counters(dom, pipeline, kind, id) {
    const table = new RegExp(`<table data-pipeline="${pipeline}">([\\s\\S]*?)</table>`).exec(dom);
    assert.ok(table, `pipeline ${pipeline} in\n${dom}`);
    const row = new RegExp(`<tr class="${kind}"><td>${kind}</td><td class="id">${id}</td><td class="counters">(.*?)</td></tr>`).exec(table[1]);
    assert.ok(row, `${kind} ${id} in pipeline ${pipeline}:\n${table[1]}`);
    return Object.fromEntries([...row[1].matchAll(/(\w+): <span class="n">(\d+)<\/span>/g)].map((m) => [m[1], Number(m[2])]));
}

const yaml = (o) => `extensions:
  zpages:
    endpoint: 127.0.0.1:0
  health_check:
    endpoint: 127.0.0.1:0
receivers:
  otlp:
    protocols:
      grpc: {endpoint: 127.0.0.1:${o.grpcPort}}
      http: {endpoint: 127.0.0.1:${o.httpPort}}
processors:
  batch:
    timeout: 20ms
exporters:
  file: {path: ${JSON.stringify(o.outPath)}}
  otlp:
    endpoint: 127.0.0.1:1
    tls: {insecure: true}
    retry_on_failure: {enabled: false}
service:
  extensions: [zpages, health_check]
  pipelines:
    traces:
      receivers: [otlp]
      processors: [batch]
      exporters: [file]
    traces/unreachable:
      receivers: [otlp]
      exporters: [otlp]
    logs:
      receivers: [otlp]
      processors: [batch]
      exporters: [file]
`;

test('pipelinez, extensionz and servicez in headless Chromium show the running collector and its counters', async (t) => {
    const c = await startCollector({ yaml });
    t.after(() => c.kill());
    await c.check(async () => {
        const port = c.listeningPort(/zpages listening on \S*:(\d+)/);
        assert.ok(port > 0, 'the zpages port in the log');
        const provider = new BasicTracerProvider({
            resource: resourceFromAttributes({ 'service.name': 'zpages-test' }),
            spanProcessors: [new SimpleSpanProcessor(new OTLPTraceExporter({ url: `http://127.0.0.1:${c.grpcPort}` }))],
        });
        const tracer = provider.getTracer('zpages');
        for (let i = 0; i < 4; i++) {
            tracer.startSpan(`span-${i}`, { kind: api.SpanKind.SERVER }).end();
        }
        await provider.forceFlush();
        await provider.shutdown();
        const base = `http://127.0.0.1:${port}/debug`;
        let dom;
        // The unreachable exporter's failures are counted when its attempt ends: wait for that.
        await waitFor(() => {
            dom = browserDom(`${base}/pipelinez`);
            return counters(dom, 'traces/unreachable', 'exporter', 'otlp').failed === 4;
        }, 30000 * TIME_SCALE, '4 failed spans on the unreachable exporter\'s row');
        assert.deepEqual(counters(dom, 'traces', 'receiver', 'otlp'), { accepted: 4, refused: 0 });
        assert.deepEqual(counters(dom, 'traces/unreachable', 'exporter', 'otlp'), { sent: 0, failed: 4, queued: 0 });
        assert.deepEqual(counters(dom, 'traces', 'processor', 'batch'), {});
        assert.deepEqual(counters(dom, 'logs', 'receiver', 'otlp'), { accepted: 0, refused: 0 });
        assert.match(dom, /<h2 class="pipeline" id="traces\/unreachable">traces\/unreachable<\/h2>/);

        const ext = browserDom(`${base}/extensionz`);
        const ids = [...ext.matchAll(/<tr class="extension"><td class="id">([^<]*)<\/td><\/tr>/g)].map((m) => m[1]);
        assert.deepEqual(ids.sort(), ['health_check', 'zpages']);

        const svc = browserDom(`${base}/servicez`);
        assert.match(svc, /<td id="version">\d+\.\d+\.\d+<\/td>/);
        assert.match(svc, /<td id="start">\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ<\/td>/);
        // Links between the pages, as a person navigates them.
        assert.match(svc, /<a href="\/debug\/pipelinez">pipelinez<\/a>/);

        const missing = await fetch(`${base}/tracez`);
        assert.equal(missing.status, 404);
    });
    await c.stop();
});
