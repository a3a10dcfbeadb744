// shutdown.test.mjs: graceful shutdown flushes what the batch processor holds, and the command
// line (validate, components, --version, bad flags, bad configs) behaves like otelcol's.
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import path from 'node:path';
import { describe, test } from 'node:test';

import {
    collectorConfigYaml, flattenLogs, flattenMetrics, flattenSpans, requireJs, runOtelmon,
    startCollector, tempDir, waitFor,
} from '../js/harness.mjs';
import { logsProto, metricsProto, tracesJson, tracesProto } from '../js/otlp_build.mjs';

const grpc = requireJs('@grpc/grpc-js');

function post(port, urlPath, contentType, body) {
    return new Promise((resolve, reject) => {
        const req = http.request({ host: '127.0.0.1', port, method: 'POST', path: urlPath, agent: false,
                                   headers: { 'content-type': contentType } }, (res) => {
            res.resume();
            res.on('end', () => resolve(res.statusCode));
        });
        req.on('error', reject);
        req.end(body);
    });
}

function grpcExport(address, method, bytes) {
    const client = new grpc.Client(address, grpc.credentials.createInsecure());
    return new Promise((resolve) => {
        client.makeUnaryRequest(method, (b) => b, (b) => b, bytes, new grpc.Metadata(), { deadline: Date.now() + 10000 },
                                (err) => {
                                    client.close();
                                    resolve(err ? err.code : 0);
                                });
    });
}

/** Send one span over HTTP/JSON, one over HTTP/protobuf, one metric and one log over gRPC. */
async function sendSome(c, tag) {
    assert.equal(await post(c.httpPort, '/v1/traces', 'application/json', tracesJson(`${tag}:json`).text), 200);
    assert.equal(await post(c.httpPort, '/v1/traces', 'application/x-protobuf', tracesProto(`${tag}:pb`).bytes), 200);
    assert.equal(await grpcExport(c.grpcAddress, '/opentelemetry.proto.collector.metrics.v1.MetricsService/Export',
                                  metricsProto(`${tag}.metric`, 11).bytes), 0);
    assert.equal(await grpcExport(c.grpcAddress, '/opentelemetry.proto.collector.logs.v1.LogsService/Export',
                                  logsProto(`${tag} log`).bytes), 0);
    return { spans: [`${tag}:json`, `${tag}:pb`], metric: `${tag}.metric`, log: `${tag} log` };
}

function assertDelivered(out, sent) {
    assert.deepEqual(flattenSpans(out.resourceSpans).map((s) => s.item.name).sort(), [...sent.spans].sort(),
                     'spans in the output');
    assert.deepEqual(flattenMetrics(out.resourceMetrics).map((m) => m.item.name), [sent.metric],
                     'metrics in the output');
    assert.deepEqual(flattenLogs(out.resourceLogs).map((l) => l.item.body?.stringValue), [sent.log],
                     'logs in the output');
}

describe('graceful shutdown', () => {
    for (const signal of ['SIGTERM', 'SIGINT']) {
        test(`${signal} flushes data still held by the batch processor`, async (t) => {
            // A batch timeout far longer than the bound below: the data can only reach the
            // file through the shutdown flush.
            const c = await startCollector({ batchTimeout: '30s' });
            t.after(() => c.kill());
            await c.check(async () => {
                const sent = await sendSome(c, signal.toLowerCase());
                const before = c.output();
                assert.equal(before.lines.length, 0,
                             'nothing should be exported before the 30 s batch timeout or shutdown');
                const t0 = Date.now();
                c.proc.kill(signal);
                const res = await c.terminate(10000);
                assert.equal(res.code, 0, `exit code after ${signal}`);
                assert.ok(Date.now() - t0 < 5000, `shutdown took ${Date.now() - t0} ms, bound 5000 ms`);
                assertDelivered(c.output(), sent);
            });
        });
    }

    test('SIGTERM under load: every acknowledged item reaches the file', { timeout: 60000 }, async (t) => {
        const c = await startCollector({ batchTimeout: '10s' });
        t.after(() => c.kill());
        await c.check(async () => {
            const acked = [];
            const failures = new Map();
            let stop = false;
            let seq = 0;
            const client = new grpc.Client(c.grpcAddress, grpc.credentials.createInsecure());
            const worker = async (w) => {
                while (!stop) {
                    const name = `load:${w}:${seq++}`;
                    let ok;
                    if (w % 2 === 0) {
                        ok = await post(c.httpPort, '/v1/traces', 'application/x-protobuf', tracesProto(name).bytes)
                            .then((st) => st === 200 || `HTTP ${st}`, (e) => e.code ?? e.message);
                    } else {
                        ok = await new Promise((resolve) => client.makeUnaryRequest(
                            '/opentelemetry.proto.collector.trace.v1.TraceService/Export', (b) => b, (b) => b,
                            tracesProto(name).bytes, new grpc.Metadata(), { deadline: Date.now() + 10000 },
                            (err) => resolve(err ? `gRPC ${err.code}` : true)));
                    }
                    if (ok === true) {
                        acked.push(name);
                    } else {
                        failures.set(ok, (failures.get(ok) ?? 0) + 1);
                    }
                }
            };
            const workers = [0, 1, 2, 3, 4, 5, 6, 7].map(worker);
            // SIGTERM once the load is flowing.
            await waitFor(() => acked.length >= 40, 10000, '40 requests accepted');
            const ackedBefore = acked.length;
            c.proc.kill('SIGTERM');
            const res = await c.terminate(15000);
            stop = true;
            await Promise.all(workers);
            client.close();
            assert.equal(res.code, 0, 'exit code after SIGTERM under load');
            assert.ok(ackedBefore > 20, `the load ran (${ackedBefore} requests acknowledged before SIGTERM)`);
            const names = new Set(flattenSpans(c.output().resourceSpans).map((s) => s.item.name));
            const lost = acked.filter((n) => !names.has(n));
            assert.deepEqual(lost.slice(0, 20), [], `${lost.length} of ${acked.length} acknowledged spans are ` +
                             `missing from the output (failed requests: ${JSON.stringify([...failures])})`);
        });
    });

    test('a second SIGTERM during shutdown does no harm', async (t) => {
        const c = await startCollector({ batchTimeout: '30s' });
        t.after(() => c.kill());
        await c.check(async () => {
            const sent = await sendSome(c, 'twice');
            c.proc.kill('SIGTERM');
            c.proc.kill('SIGTERM');
            const res = await c.terminate(10000);
            assert.equal(res.code, 0, 'exit code');
            assertDelivered(c.output(), sent);
        });
    });

    test('SIGTERM with nothing received exits 0 quickly', async (t) => {
        const c = await startCollector();
        t.after(() => c.kill());
        await c.check(async () => {
            const res = await c.stop(10000);
            assert.ok(res.ms < 3000, `shutdown took ${res.ms} ms, bound 3000 ms`);
            assert.equal(c.output().lines.length, 0, 'no data, no output lines');
        });
    });

    test('the --config=FILE spelling runs the same config', async (t) => {
        const c = await startCollector({ configEquals: true });
        t.after(() => c.kill());
        await c.check(async () => {
            const sent = await sendSome(c, 'eqform');
            await c.stop();
            assertDelivered(c.output(), sent);
        });
    });
});

/** Write a config file in a fresh temp dir. */
function writeConfig(text, name = 'config.yaml') {
    const file = path.join(tempDir(), name);
    writeFileSync(file, text);
    return file;
}

function goodConfig(ports) {
    return collectorConfigYaml({ grpcPort: ports[0], httpPort: ports[1], outPath: path.join(tempDir(), 'o.jsonl') });
}

const describeRun = (r) => `exit ${r.code}\n--- stdout:\n${r.stdout}--- stderr:\n${r.stderr}---`;

/** Hold a TCP port on 127.0.0.1 open while fn runs. */
async function holdingPort(fn) {
    const srv = net.createServer();
    await new Promise((resolve) => srv.listen(0, '127.0.0.1', resolve));
    try {
        return await fn(srv.address().port);
    } finally {
        await new Promise((resolve) => srv.close(resolve));
    }
}

describe('otelmon validate', () => {
    test('a good config: exit 0, no output, no port bound', async () => {
        // The config names a port that is in use: validate must not try to bind it.
        await holdingPort(async (busy) => {
            const file = writeConfig(goodConfig([busy, busy]));
            for (const args of [['validate', '--config', file], ['validate', `--config=${file}`]]) {
                const r = runOtelmon(args);
                assert.equal(r.code, 0, `${args.join(' ')}: ${describeRun(r)}`);
                assert.equal(r.stdout, '', `no stdout: ${describeRun(r)}`);
                assert.equal(r.stderr, '', `no stderr: ${describeRun(r)}`);
            }
        });
    });

    test('unknown receiver type: exit 1 with file:line:col', () => {
        const text = goodConfig([4317, 4318]).replace('receivers:\n', 'receivers:\n  nosuch:\n    foo: 1\n')
            .replace('receivers: [otlp]', 'receivers: [otlp, nosuch]');
        const file = writeConfig(text);
        const r = runOtelmon(['validate', '--config', file]);
        assert.equal(r.code, 1, describeRun(r));
        assert.match(r.stderr, new RegExp(`^${escapeRe(file)}:2:3: .*unknown type: "nosuch"`, 'm'),
                     `the error names the file, line and column of "nosuch": ${describeRun(r)}`);
        assert.equal(r.stdout, '', describeRun(r));
    });

    test('unknown key: exit 1 with file:line:col', () => {
        const text = goodConfig([4317, 4318]).replace(/( {4}timeout: .*\n)/, '$1    timeoutt: 1s\n');
        const lines = text.split('\n');
        const line = lines.findIndex((l) => l.includes('timeoutt')) + 1;
        const file = writeConfig(text);
        const r = runOtelmon(['validate', '--config', file]);
        assert.equal(r.code, 1, describeRun(r));
        assert.match(r.stderr, new RegExp(`^${escapeRe(file)}:${line}:5: .*has invalid keys: timeoutt`, 'm'),
                     `the error names the file, line ${line}, column 5 and the key: ${describeRun(r)}`);
    });

    test('every problem is reported, each on its own line', () => {
        const text = goodConfig([4317, 4318]).replace(/( {4}timeout: .*\n)/, '$1    timeoutt: 1s\n')
            .replace('receivers:\n', 'receivers:\n  nosuch:\n')
            .replace('receivers: [otlp]', 'receivers: [otlp, nosuch]');
        const file = writeConfig(text);
        const r = runOtelmon(['validate', '--config', file]);
        assert.equal(r.code, 1, describeRun(r));
        const errs = r.stderr.split('\n').filter((l) => l.startsWith(`${file}:`));
        assert.ok(errs.some((l) => l.includes('nosuch')) && errs.some((l) => l.includes('timeoutt')),
                  `both problems reported with positions: ${describeRun(r)}`);
    });

    test('YAML syntax error: exit 1 with file:line:col', () => {
        const file = writeConfig('receivers:\n  otlp:\n    protocols: [unclosed\nexporters:\n');
        const r = runOtelmon(['validate', '--config', file]);
        assert.equal(r.code, 1, describeRun(r));
        assert.match(r.stderr, new RegExp(`${escapeRe(file)}:\\d+:\\d+`), describeRun(r));
    });

    test('missing file: exit 1 and the message names the file', () => {
        const file = path.join(tempDir(), 'does-not-exist.yaml');
        const r = runOtelmon(['validate', '--config', file]);
        assert.equal(r.code, 1, describeRun(r));
        assert.ok(r.stderr.includes(file), describeRun(r));
    });

    test('running (not validating) a bad config exits 1 with file:line:col', () => {
        const text = goodConfig([4317, 4318]).replace(/( {4}timeout: .*\n)/, '$1    timeoutt: 1s\n');
        const file = writeConfig(text);
        const r = runOtelmon(['--config', file], { timeout: 10000 });
        assert.equal(r.code, 1, describeRun(r));
        assert.match(r.stderr, new RegExp(`${escapeRe(file)}:\\d+:5: .*has invalid keys: timeoutt`), describeRun(r));
    });
});

/** The output while the collector runs: null while a line is still being written (the final
 * read after the exit is strict). */
function outputSoFar(c) {
    try {
        return c.output();
    } catch {
        return null;
    }
}

describe('batch processor, seen from outside', () => {
    test('the batch timeout sends data while the collector keeps running', async (t) => {
        const c = await startCollector({ batchTimeout: '200ms' });
        t.after(() => c.kill());
        await c.check(async () => {
            const sent = await sendSome(c, 'timer');
            const t0 = Date.now();
            await waitFor(() => {
                const out = outputSoFar(c);
                return out && flattenSpans(out.resourceSpans).length === 2 && out.resourceMetrics.length > 0 &&
                    out.resourceLogs.length > 0;
            }, 5000, 'the data in the file, 200 ms batch timeout (plus the file exporter flush)');
            assert.ok(Date.now() - t0 < 5000);
            await c.stop();
            assertDelivered(c.output(), sent);
        });
    });

    test('send_batch_size sends a full batch at once, before the timeout', async (t) => {
        const c = await startCollector({ batchTimeout: '30s', batch: { send_batch_size: 5 } });
        t.after(() => c.kill());
        await c.check(async () => {
            const names = [];
            for (let i = 0; i < 5; i++) {
                names.push(`full:${i}`);
                assert.equal(await post(c.httpPort, '/v1/traces', 'application/json', tracesJson(`full:${i}`).text), 200);
            }
            await waitFor(() => flattenSpans(outputSoFar(c)?.resourceSpans ?? []).length === 5, 5000,
                          'a full batch of 5 spans in the file long before the 30 s timeout');
            await c.stop();
            assert.deepEqual(flattenSpans(c.output().resourceSpans).map((x) => x.item.name).sort(), names.sort());
        });
    });
});

describe('config files', () => {
    test('${env:VAR}, ${VAR} and ${env:VAR:-default} are expanded', async (t) => {
        const unset = 'OTELMON_IT_SURELY_UNSET_VAR';
        delete process.env[unset];
        process.env.OTELMON_IT_GRPC = '127.0.0.1:0';
        process.env.OTELMON_IT_TIMEOUT = '50ms';
        t.after(() => {
            delete process.env.OTELMON_IT_GRPC;
            delete process.env.OTELMON_IT_TIMEOUT;
        });
        const c = await startCollector({
            // Port 0 in both endpoints: the first replace takes the gRPC one, the second the HTTP.
            yaml: (o) => collectorConfigYaml(o)
                .replace('endpoint: 127.0.0.1:0', 'endpoint: ${env:OTELMON_IT_GRPC}')
                .replace('endpoint: 127.0.0.1:0', `endpoint: \${env:${unset}:-127.0.0.1:0}`)
                .replace('timeout: 50ms', 'timeout: ${OTELMON_IT_TIMEOUT}'),
        });
        t.after(() => c.kill());
        await c.check(async () => {
            assert.match(c.stderr, /OTLP\/gRPC listening on 127\.0\.0\.1:/);
            const sent = await sendSome(c, 'env');
            await c.stop();
            assertDelivered(c.output(), sent);
        });
    });

    test('a second --config file merges over the first', async (t) => {
        // The first file's HTTP endpoint is a port this test holds: the collector could not
        // start unless the second file replaced it.
        await holdingPort(async (busy) => {
            const override = writeConfig('receivers:\n  otlp:\n    protocols:\n      http:\n' +
                                         '        endpoint: 127.0.0.1:0\n', 'override.yaml');
            const c = await startCollector({
                yaml: (o) => collectorConfigYaml(o)
                    .replace(/(http:\n\s+endpoint: 127\.0\.0\.1:)0/, `$1${busy}`),
                args: ['--config', override],
            });
            t.after(() => c.kill());
            await c.check(async () => {
                assert.notEqual(c.httpPort, busy);
                const sent = await sendSome(c, 'merged');
                await c.stop();
                assertDelivered(c.output(), sent);
            });
        });
    });

    test('the debug exporter prints what it receives (verbosity: detailed)', async (t) => {
        const c = await startCollector({
            yaml: (o) => collectorConfigYaml(o)
                .replace('exporters:\n', 'exporters:\n  debug:\n    verbosity: detailed\n')
                .replaceAll('exporters: [file]', 'exporters: [file, debug]'),
        });
        t.after(() => c.kill());
        await c.check(async () => {
            const sent = await sendSome(c, 'debugged');
            await c.stop();
            assertDelivered(c.output(), sent);
            const printed = c.stdout + c.stderr;
            for (const what of [...sent.spans, sent.metric, sent.log]) {
                assert.ok(printed.includes(what), `the debug exporter printed "${what}"`);
            }
        });
    });

    test('custom url paths replace the default ones', async (t) => {
        const c = await startCollector({ http: { traces_url_path: '/custom/t', metrics_url_path: '/custom/m',
                                                 logs_url_path: '/custom/l' } });
        t.after(() => c.kill());
        await c.check(async () => {
            assert.equal(await post(c.httpPort, '/custom/t', 'application/json', tracesJson('custom:t').text), 200);
            assert.equal(await post(c.httpPort, '/v1/traces', 'application/json', tracesJson('custom:default').text), 404,
                         'the default path is gone when a custom one is configured');
            await c.stop();
            assert.deepEqual(flattenSpans(c.output().resourceSpans).map((s) => s.item.name), ['custom:t']);
        });
    });

    test('a pipeline naming an unconfigured receiver: the otelcol message with file:line:col', () => {
        const text = goodConfig([4317, 4318]).replace('    logs:\n      receivers: [otlp]', '    logs:\n      receivers: [otlp, nope]');
        const file = writeConfig(text);
        const r = runOtelmon(['validate', '--config', file]);
        assert.equal(r.code, 1, describeRun(r));
        assert.match(r.stderr, new RegExp(`^${escapeRe(file)}:\\d+:\\d+: .*service::pipelines::logs: ` +
                                          'references receiver "nope" which is not configured', 'm'), describeRun(r));
    });

    test('a duplicate key is an error with file:line:col', () => {
        const text = goodConfig([4317, 4318]).replace(/( {4}timeout: .*\n)/, '$1    timeout: 1s\n');
        const line = text.split('\n').findIndex((l) => l === '    timeout: 1s') + 1;
        const file = writeConfig(text);
        const r = runOtelmon(['validate', '--config', file]);
        assert.equal(r.code, 1, describeRun(r));
        assert.match(r.stderr, new RegExp(`^${escapeRe(file)}:${line}:5: `, 'm'), describeRun(r));
    });
});

describe('config URIs and flags, as otelcol takes them', () => {
    test('env:VAR, yaml: and --set sources merge in order over the file; the collector runs on them', async (t) => {
        // The file names a file exporter with a path the later sources replace; the run must use
        // the last one.
        const dir = tempDir();
        const out = path.join(dir, 'out.jsonl');
        process.env.OTELMON_IT_CFG = 'processors:\n  batch:\n    timeout: 10s\n';
        t.after(() => { delete process.env.OTELMON_IT_CFG; });
        const c = await startCollector({
            yaml: (o) => collectorConfigYaml({ ...o, outPath: path.join(dir, 'first.jsonl') }),
            args: ['--config', 'env:OTELMON_IT_CFG',
                   '--config', `yaml:exporters::file::path: ${JSON.stringify(path.join(dir, 'second.jsonl'))}`,
                   `--set=exporters.file.path=${out}`,
                   '--set', 'processors.batch.timeout=20ms',
                   '--feature-gates=+some.gate'],
        });
        t.after(() => c.kill());
        c.outPath = out;
        await c.check(async () => {
            assert.match(c.stderr, /--feature-gates: otelmon has no feature gates; ignoring: \+some\.gate/);
            const sent = await sendSome(c, 'uris');
            // timeout 20ms from --set (the env source said 10s): the data arrives before shutdown.
            await waitFor(() => c.output().lines.length >= 3, 10000, 'the three requests in the file');
            await c.stop();
            assertDelivered(c.output(), sent);
        });
    });

    test('validate and validate-config take URIs and --set; errors name the URI and position', () => {
        const file = writeConfig(goodConfig([0, 0]));
        for (const cmd of ['validate', 'validate-config']) {
            const ok = runOtelmon([cmd, '--config', file, '--set=processors.batch.timeout=2s',
                                   '--config', 'yaml:exporters::file::append: true']);
            assert.equal(ok.code, 0, describeRun(ok));
            assert.equal(ok.stderr, '', describeRun(ok));
        }
        const bad = runOtelmon(['validate', '--config', file, '--set=processors.batch.timeout=soon']);
        assert.equal(bad.code, 1, describeRun(bad));
        assert.match(bad.stderr, /^yaml:processors::batch::timeout: soon:1:\d+: processors::batch::timeout: /m,
                     describeRun(bad));
        process.env.OTELMON_IT_BAD = 'receivers:\n  otlp:\n    nope: 1\n';
        const env = runOtelmon(['validate', '--config', file, '--config', 'env:OTELMON_IT_BAD']);
        delete process.env.OTELMON_IT_BAD;
        assert.equal(env.code, 1, describeRun(env));
        assert.match(env.stderr, /^env:OTELMON_IT_BAD:3:5: 'receivers::otlp' has invalid keys: nope$/m,
                     describeRun(env));
        const http = runOtelmon(['validate', '--config', 'https://example.com/c.yaml']);
        assert.equal(http.code, 1, describeRun(http));
        assert.match(http.stderr, /http and https config URIs are not supported/, describeRun(http));
        const noeq = runOtelmon(['validate', '--config', file, '--set', 'processors.batch.timeout']);
        assert.notEqual(noeq.code, 0, describeRun(noeq));
        assert.match(noeq.stderr, /--set: missing equal sign/, describeRun(noeq));
    });
});

describe('the collector\'s own log (service::telemetry::logs)', () => {
    test('json encoding with initial_fields to a file and stderr, at the configured level', async (t) => {
        const dir = tempDir();
        const logFile = path.join(dir, 'otelmon.log');
        const c = await startCollector({
            yaml: (o) => collectorConfigYaml(o).replace('service:\n',
                'service:\n  telemetry:\n    logs:\n      level: info\n      encoding: json\n' +
                `      initial_fields: {service: otelmon-it, "quote\\"key": "v"}\n` +
                `      output_paths: [stderr, ${JSON.stringify(logFile)}]\n` +
                '      sampling: {enabled: true, tick: 10s, initial: 10, thereafter: 100}\n'),
        });
        t.after(() => c.kill());
        await c.check(async () => {
            await c.stop();
            const lines = readFileSync(logFile, 'utf8').trim().split('\n').map((l) => JSON.parse(l));
            const ready = lines.find((l) => /everything is ready/.test(l.msg));
            assert.ok(ready, `the ready line in ${logFile}`);
            assert.equal(ready.level, 'info');
            assert.match(ready.ts, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
            assert.equal(ready.service, 'otelmon-it');
            assert.equal(ready['quote"key'], 'v');
            const listen = lines.find((l) => /OTLP\/HTTP listening on/.test(l.msg));
            assert.equal(listen['otelcol.component.kind'], 'receiver');
            assert.equal(listen['otelcol.component.id'], 'otlp');
            // stderr got the same lines.
            assert.match(c.stderr, /^\{"level":"info","ts":"[^"]+".*"msg":"everything is ready/m);
        });
    });

    test('an output path that cannot be opened stops the start with a message', () => {
        const file = writeConfig(goodConfig([0, 0]).replace('service:\n',
            'service:\n  telemetry:\n    logs:\n      output_paths: [/nonexistent/dir/otelmon.log]\n'));
        const r = runOtelmon(['--config', file], { timeout: 15000 });
        assert.equal(r.code, 1, describeRun(r));
        assert.match(r.stderr, /output_paths: cannot open \/nonexistent\/dir\/otelmon\.log/, describeRun(r));
    });
});

describe('startup failures', () => {
    for (const which of ['grpc', 'http']) {
        test(`${which} port in use: exit non-zero with a message naming the address`, async () => {
            await holdingPort(async (busy) => {
                const ports = which === 'grpc' ? [busy, 0] : [0, busy];
                const file = writeConfig(goodConfig(ports));
                const r = runOtelmon(['--config', file], { timeout: 15000 });
                assert.notEqual(r.signal, 'SIGTERM', `the collector kept running: ${describeRun(r)}`);
                assert.notEqual(r.code, 0, describeRun(r));
                assert.ok(r.stderr.includes(String(busy)), `stderr names port ${busy}: ${describeRun(r)}`);
            });
        });
    }
});

describe('command line', () => {
    test('components lists otlp, batch, debug and file', () => {
        const r = runOtelmon(['components']);
        assert.equal(r.code, 0, describeRun(r));
        const section = (kind) => {
            const m = r.stdout.match(new RegExp(`^${kind}:\\n((?:[ \\t].*\\n?)*)`, 'm'));
            return m ? [...m[1].matchAll(/- name: (\S+)/g)].map((x) => x[1]) : [];
        };
        assert.ok(section('receivers').includes('otlp'), `receivers include otlp: ${describeRun(r)}`);
        assert.ok(section('processors').includes('batch'), `processors include batch: ${describeRun(r)}`);
        assert.ok(section('exporters').includes('debug'), `exporters include debug: ${describeRun(r)}`);
        assert.ok(section('exporters').includes('file'), `exporters include file: ${describeRun(r)}`);
    });

    test('--version prints the version and exits 0', () => {
        for (const flag of ['--version', '-v']) {
            const r = runOtelmon([flag]);
            assert.equal(r.code, 0, describeRun(r));
            assert.match(r.stdout, /^otelmon version \d+\.\d+\.\d+/, describeRun(r));
        }
    });

    test('--help prints usage and exits 0', () => {
        const r = runOtelmon(['--help']);
        assert.equal(r.code, 0, describeRun(r));
        assert.match(r.stdout, /Usage/, describeRun(r));
        assert.match(r.stdout, /validate/, describeRun(r));
    });

    test('an unknown flag: exit non-zero with a one-line error naming it', () => {
        const r = runOtelmon(['--no-such-flag'], { timeout: 10000 });
        assert.notEqual(r.code, 0, describeRun(r));
        assert.equal(r.stdout, '', `nothing on stdout: ${describeRun(r)}`);
        const lines = r.stderr.split('\n').filter((l) => l !== '');
        assert.match(lines[0] ?? '', /--no-such-flag/, `the first line names the flag: ${describeRun(r)}`);
        // One line of error, at most one line of hint (no usage dump).
        assert.ok(lines.length <= 2, `a short error, not a usage dump: ${describeRun(r)}`);
    });

    test('validate without --config: exit non-zero with an error', () => {
        const r = runOtelmon(['validate'], { timeout: 10000 });
        assert.notEqual(r.code, 0, describeRun(r));
        assert.match(r.stderr, /config/, describeRun(r));
    });
});

function escapeRe(s) {
    return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}
