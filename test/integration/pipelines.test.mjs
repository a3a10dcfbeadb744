// pipelines.test.mjs: the graph built from service.pipelines, seen from outside: a receiver in
// several pipelines listens once and fans out; an exporter in several pipelines is one
// instance that gets every pipeline's data; each pipeline has its own processors.

import assert from 'node:assert/strict';
import path from 'node:path';
import { test } from 'node:test';

import { flattenLogs, flattenSpans, readFileOutput, startCollector } from '../js/harness.mjs';
import { logsProto, tracesJson } from '../js/otlp_build.mjs';

function fanoutYaml(o) {
    const fileA = JSON.stringify(path.join(o.dir, 'a.jsonl'));
    const fileB = JSON.stringify(path.join(o.dir, 'b.jsonl'));
    return `receivers:
  otlp:
    protocols:
      grpc: {endpoint: 127.0.0.1:${o.grpcPort}}
      http: {endpoint: 127.0.0.1:${o.httpPort}}
processors:
  batch:
    timeout: 20ms
  batch/big:
    timeout: 10s
exporters:
  file/a: {path: ${fileA}}
  file/b: {path: ${fileB}}
service:
  pipelines:
    traces:
      receivers: [otlp]
      processors: [batch]
      exporters: [file/a]
    traces/copy:
      receivers: [otlp]
      processors: [batch/big]
      exporters: [file/b]
    logs:
      receivers: [otlp]
      processors: [batch]
      exporters: [file/a, file/b]
`;
}

async function post(port, urlPath, type, body) {
    const res = await fetch(`http://127.0.0.1:${port}${urlPath}`, {
        method: 'POST', headers: { 'content-type': type }, body,
    });
    await res.arrayBuffer();
    return res.status;
}

test('fan-out: one receiver feeds two trace pipelines; one exporter serves two pipelines', async (t) => {
    const c = await startCollector({ yaml: fanoutYaml });
    t.after(() => c.kill());
    const traces = tracesJson('fanned-out');
    assert.equal(await post(c.httpPort, '/v1/traces', 'application/json', traces.text), 200);
    assert.equal(await post(c.httpPort, '/v1/logs', 'application/x-protobuf', logsProto('both files').bytes), 200);
    await c.stop();

    const a = readFileOutput(path.join(c.dir, 'a.jsonl'));
    const b = readFileOutput(path.join(c.dir, 'b.jsonl'));
    // Every pipeline's copy arrived once: traces in both files (two pipelines), logs in both
    // (one pipeline, two exporters), and the file/a instance got both signals.
    for (const [name, out] of [['a', a], ['b', b]]) {
        const spans = flattenSpans(out.resourceSpans).map((s) => s.item.name);
        assert.deepEqual(spans, ['fanned-out'], `spans in ${name}`);
        const logs = flattenLogs(out.resourceLogs).map((l) => l.item.body.stringValue);
        assert.deepEqual(logs, ['both files'], `logs in ${name}`);
    }
});

test('a receiver used by no pipeline of a signal answers 404 for that signal', async (t) => {
    const c = await startCollector({ yaml: fanoutYaml });
    t.after(() => c.kill());
    assert.equal(await post(c.httpPort, '/v1/metrics', 'application/json', '{}'), 404);
    assert.equal(await post(c.httpPort, '/v1/traces', 'application/json', '{}'), 200);
    await c.stop();
});

test('health_check extension: 200 with the status JSON while the collector runs', async (t) => {
    const c = await startCollector({
        yaml: (o) => `receivers:
  otlp:
    protocols:
      grpc: {endpoint: 127.0.0.1:${o.grpcPort}}
      http: {endpoint: 127.0.0.1:${o.httpPort}}
exporters:
  file: {path: ${JSON.stringify(o.outPath)}}
extensions:
  health_check:
    endpoint: 127.0.0.1:0
    path: /health/status
service:
  extensions: [health_check]
  pipelines:
    traces:
      receivers: [otlp]
      exporters: [file]
`,
    });
    t.after(() => c.kill());
    const hcPort = c.listeningPort(/health check listening on port (\d+)/);
    await c.check(async () => {
        assert.ok(hcPort > 0, 'the health check logs its port');
        // The receivers listen once every pipeline has started, so the state is ready now.
        const res = await fetch(`http://127.0.0.1:${hcPort}/health/status`);
        assert.equal(res.status, 200);
        assert.equal(res.headers.get('content-type'), 'application/json');
        const body = await res.json();
        assert.deepEqual(Object.keys(body), ['status', 'upSince', 'uptime']);
        assert.equal(body.status, 'Server available');
        const since = Date.parse(body.upSince);
        assert.ok(since > Date.now() - 60000 && since <= Date.now() + 1000, body.upSince);
        assert.match(body.uptime, /^([0-9]+(\.[0-9]+)?(h|m|s|ms|µs|ns))+$/);
        const other = await fetch(`http://127.0.0.1:${hcPort}/`);
        assert.equal(other.status, 404);
        await other.arrayBuffer();
    });
    await c.stop();
    // Shut down with the collector: nothing listens any more.
    await assert.rejects(fetch(`http://127.0.0.1:${hcPort}/health/status`));
});
