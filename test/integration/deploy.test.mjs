// deploy.test.mjs: the OtelMon stack in deploy/ (docker-compose.yaml, the collector's
// otelmon.yaml, prometheus.yml, Grafana's provisioning and dashboard).
//
// There is no container engine here, nor Grafana or Tempo, so the stack is checked in parts,
// each with the real program that reads it:
//   - Debian's docker-compose resolves the compose file with deploy/.env.example (and refuses
//     it without the secrets); every file it mounts exists;
//   - promtool checks prometheus.yml;
//   - the collector runs deploy/otelmon.yaml as it is, but for its addresses (service names
//     become loopback ports): the JS SDK sends an ETL run that fails, a run that succeeds and a
//     counter over OTLP/gRPC; the runs reach a gRPC server standing in for Tempo and a real
//     MariaDB (rows and an alarm), the alarm API answers with the bearer token only, and a real
//     Prometheus runs deploy/prometheus.yml (targets and interval made local) and scrapes the
//     collector's exporter and its own metrics;
//   - then every query of the Grafana dashboard runs where Grafana would run it: each PromQL
//     expression against that Prometheus, each SQL query against that MariaDB (with Grafana's
//     $__timeFilter and $__rate_interval macros expanded as Grafana expands them), and each
//     must return data; every data source a panel names is provisioned.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';

import { freePorts, requireJs, startCollector, tempDir, TIME_SCALE, waitFor } from '../js/harness.mjs';
import { MariaDB } from '../js/mariadb.mjs';
import { Prometheus } from '../js/prometheus.mjs';
import { startGrpcBackend } from '../js/relay.mjs';

const S = (ms) => ms * TIME_SCALE;
const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const DEPLOY = path.join(REPO, 'deploy');
const read = (f) => readFileSync(path.join(DEPLOY, f), 'utf8');

const api = requireJs('@opentelemetry/api');
const { ExportResultCode } = requireJs('@opentelemetry/core');
const { resourceFromAttributes } = requireJs('@opentelemetry/resources');
const { BasicTracerProvider, InMemorySpanExporter, SimpleSpanProcessor } = requireJs('@opentelemetry/sdk-trace-base');
const { OTLPTraceExporter } = requireJs('@opentelemetry/exporter-trace-otlp-grpc');
const { OTLPMetricExporter } = requireJs('@opentelemetry/exporter-metrics-otlp-grpc');
const { MeterProvider, PeriodicExportingMetricReader } = requireJs('@opentelemetry/sdk-metrics');

for (const k of Object.keys(process.env)) {
    if (k.startsWith('OTEL_')) {
        delete process.env[k];
    }
}

/** text with each [from, to] replaced; every `from` must occur (the files' shape is held). */
function rewrite(text, pairs, what) {
    for (const [from, to] of pairs) {
        assert.ok(text.includes(from), `${what} no longer contains ${JSON.stringify(from)}`);
        text = text.split(from).join(to);
    }
    return text;
}

/** docker-compose with deploy/docker-compose.yaml and an env file. */
function compose(envFile, ...args) {
    const r = spawnSync('docker-compose', ['--env-file', envFile, '-f', path.join(DEPLOY, 'docker-compose.yaml'), ...args],
        { encoding: 'utf8', timeout: 60000 });
    assert.ok(!r.error, 'docker-compose is missing: deploy/install-deps.sh --test installs Debian\'s docker-compose');
    return r;
}

const dashboard = JSON.parse(read('grafana/dashboards/otelmon.json'));
const targets = dashboard.panels.flatMap((p) => p.targets.map((t) => ({ panel: p.title, ...t,
                                                                       datasource: t.datasource ?? p.datasource })));

describe('deploy/: the files', () => {
    test('docker-compose resolves the stack with .env.example, and refuses it without the secrets', () => {
        const ok = compose(path.join(DEPLOY, '.env.example'), 'config', '-q');
        assert.equal(ok.status, 0, ok.stderr);
        const empty = path.join(tempDir('otelmon-deploy-'), 'empty.env');
        writeFileSync(empty, '');
        const bad = compose(empty, 'config', '-q');
        assert.notEqual(bad.status, 0, 'a stack without passwords must not resolve');
        assert.match(bad.stderr, /MARIADB_PASSWORD/);
    });

    test('every file the compose file mounts or builds from exists', () => {
        const text = read('docker-compose.yaml');
        const mounts = [...text.matchAll(/^\s*- (\.[^:\s]+):/gm)].map((m) => m[1]);
        assert.ok(mounts.length >= 5, `mounts found: ${mounts}`);
        for (const m of mounts) {
            assert.ok(existsSync(path.join(DEPLOY, m)), `deploy/${m} is mounted but missing`);
        }
        assert.ok(existsSync(path.join(DEPLOY, 'Dockerfile')));
    });

    test('promtool accepts prometheus.yml', () => {
        const r = spawnSync('promtool', ['check', 'config', path.join(DEPLOY, 'prometheus.yml')], { encoding: 'utf8' });
        assert.equal(r.status, 0, r.stdout + r.stderr);
    });

    test('every data source the dashboard names is provisioned, with the password Grafana is given', () => {
        const ds = read('grafana/provisioning/datasources/otelmon.yaml');
        const uids = new Set([...ds.matchAll(/^\s*uid: (\S+)$/gm)].map((m) => m[1]));
        for (const t of targets) {
            assert.ok(uids.has(t.datasource.uid), `panel "${t.panel}": data source ${t.datasource.uid} is not provisioned`);
        }
        for (const v of ds.matchAll(/\$([A-Z_]+)/g)) {
            assert.match(read('docker-compose.yaml'), new RegExp(`grafana:[\\s\\S]*${v[1]}:`), `grafana is not given ${v[1]}`);
        }
        const provider = read('grafana/provisioning/dashboards/otelmon.yaml');
        assert.match(provider, /path: \/var\/lib\/grafana\/dashboards/);
        assert.match(read('docker-compose.yaml'), /\.\/grafana\/dashboards:\/var\/lib\/grafana\/dashboards/);
    });
});

describe('deploy/: the stack runs, and the dashboard shows it', { timeout: S(240000) }, () => {
    let db; let tempo; let prom; let c; let ports;
    const TOKEN = 'deploy-test-token';
    const T0 = Date.now() - 60000;

    before(async () => {
        db = await MariaDB.create();
        tempo = await startGrpcBackend();
        const [grpcP, httpP, promP, telP, healthP, apiP] = await freePorts(6);
        ports = { grpcP, httpP, promP, telP, healthP, apiP };
        const yaml = rewrite(read('otelmon.yaml'), [
            ['0.0.0.0:4317', `127.0.0.1:${grpcP}`], ['0.0.0.0:4318', `127.0.0.1:${httpP}`],
            ['0.0.0.0:9464', `127.0.0.1:${promP}`], ['0.0.0.0:13133', `127.0.0.1:${healthP}`],
            ['0.0.0.0:8090', `127.0.0.1:${apiP}`], ['{host: 0.0.0.0, port: 8888}', `{host: 127.0.0.1, port: ${telP}}`],
            ['tempo:4317', tempo.address], ['@mariadb:3306/', `@127.0.0.1:${db.port}/`],
        ], 'deploy/otelmon.yaml');
        process.env.MARIADB_PASSWORD = 's3cret!pw';
        process.env.OTELMON_API_TOKEN = TOKEN;
        c = await startCollector({ yaml: () => yaml, grpcPort: grpcP, httpPort: httpP });
        const promYaml = rewrite(read('prometheus.yml'), [
            ['otelcol:9464', `127.0.0.1:${promP}`], ['otelcol:8888', `127.0.0.1:${telP}`],
            ['scrape_interval: 15s', 'scrape_interval: 1s'],
        ], 'deploy/prometheus.yml');
        prom = new Prometheus('', { config: promYaml });
        await prom.start();
    });

    after(async () => {
        await c?.stop();
        await prom?.stop();
        tempo?.close();
        await db?.stop();
    });

    test('ETL runs reach Tempo and MariaDB, the failure raises an alarm, and the API shows it', async () => {
        const mem = new InMemorySpanExporter();
        const provider = new BasicTracerProvider({
            resource: resourceFromAttributes({ 'service.name': 'airflow', 'host.name': 'airflow-worker-1' }),
            spanProcessors: [new SimpleSpanProcessor(mem)],
        });
        const t = provider.getTracer('otelmon.traced');
        const hr = (ms) => [Math.floor(ms / 1000), (ms % 1000) * 1e6];
        const runs = [['load_orders', null], ['load_customers', 'ORA-00942: table or view does not exist']];
        runs.forEach(([name, error], i) => {
            const attrs = { 'etl.process_name': name, 'etl.group_name': 'nightly', 'etl.platform': 'airflow' };
            if (error) {
                Object.assign(attrs, { 'etl.error': error, 'etl.error_type': 'DatabaseError' });
            }
            const s = t.startSpan(name, { startTime: hr(T0 + i * 1000), attributes: attrs });
            if (error) {
                s.setStatus({ code: api.SpanStatusCode.ERROR });
            }
            s.end(hr(T0 + i * 1000 + 1500));
        });
        const exporter = new OTLPTraceExporter({ url: `http://127.0.0.1:${ports.grpcP}`, timeoutMillis: S(10000) });
        const res = await new Promise((resolve) => exporter.export(mem.getFinishedSpans(), resolve));
        assert.equal(res.code, ExportResultCode.SUCCESS, `export: ${res.error}`);
        await exporter.shutdown();

        await waitFor(() => tempo.calls.length > 0, S(15000), 'the spans at Tempo');
        await waitFor(() => db.sql('SELECT COUNT(*) AS n FROM alarms')[0]?.n === '1', S(20000), 'the alarm in MariaDB');
        const rows = db.sql('SELECT process_name, success, error_message FROM process_executions ORDER BY process_name');
        assert.deepEqual(rows, [
            { process_name: 'load_customers', success: 'FAILED', error_message: 'ORA-00942: table or view does not exist' },
            { process_name: 'load_orders', success: 'SUCCESS', error_message: null },
        ]);

        const url = `http://127.0.0.1:${ports.apiP}/api/v1/alarms`;
        assert.equal((await fetch(url)).status, 401);
        const r = await fetch(url, { headers: { Authorization: `Bearer ${TOKEN}` } });
        assert.equal(r.status, 200);
        const body = await r.json();
        assert.equal(body.items.length, 1, JSON.stringify(body));
        assert.equal(body.items[0].process_name, 'load_customers');
    });

    test('an app\'s counter reaches Prometheus through the exporter, with the collector\'s own metrics', async () => {
        const reader = new PeriodicExportingMetricReader({
            exporter: new OTLPMetricExporter({ url: `http://127.0.0.1:${ports.grpcP}` }),
            exportIntervalMillis: 500,
        });
        const mp = new MeterProvider({
            resource: resourceFromAttributes({ 'service.name': 'nifi', 'service.instance.id': 'nifi-1' }),
            readers: [reader],
        });
        mp.getMeter('nifi').createCounter('flowfiles.processed', { unit: '{flowfile}' }).add(42, { flow: 'ingest' });
        await mp.forceFlush();
        await waitFor(async () => (await prom.query('flowfiles_processed_total{job="nifi",instance="nifi-1",flow="ingest"}'))
            .some((s) => s.value === 42), S(30000), 'the counter in Prometheus');
        await mp.shutdown();
        await waitFor(async () => (await prom.query('up{job="otelcol"}')).some((s) => s.value === 1), S(30000),
                      'the collector\'s own metrics scraped');
    });

    test('every dashboard query returns data: PromQL in Prometheus, SQL in MariaDB', async () => {
        const from = Math.floor(T0 / 1000) - 3600; const to = Math.floor(Date.now() / 1000) + 60;
        const promTargets = targets.filter((t) => t.datasource.type === 'prometheus');
        const sqlTargets = targets.filter((t) => t.datasource.type === 'mysql');
        assert.ok(promTargets.length >= 4 && sqlTargets.length >= 4, 'the dashboard lost its panels');
        for (const t of promTargets) {
            // Grafana's $__rate_interval is at least four scrape intervals: 4 s here.
            const q = t.expr.replaceAll('$__rate_interval', '4s');
            await waitFor(async () => (await prom.query(q)).length > 0, S(30000), `panel "${t.panel}": ${q}`);
        }
        for (const t of sqlTargets) {
            // Grafana's MySQL macro: $__timeFilter(c) is c BETWEEN FROM_UNIXTIME(from) AND FROM_UNIXTIME(to).
            const q = t.rawSql.replace(/\$__timeFilter\(([^)]+)\)/g, `$1 BETWEEN FROM_UNIXTIME(${from}) AND FROM_UNIXTIME(${to})`);
            assert.doesNotMatch(q, /\$__/, `panel "${t.panel}" uses a macro the test does not expand`);
            const rows = db.sql(q);
            assert.ok(rows.length > 0, `panel "${t.panel}" shows nothing: ${q}`);
        }
        const failed = db.sql(sqlTargets.find((t) => t.panel === 'Latest failed runs').rawSql
            .replace(/\$__timeFilter\(([^)]+)\)/g, `$1 BETWEEN FROM_UNIXTIME(${from}) AND FROM_UNIXTIME(${to})`));
        assert.equal(failed.length, 1);
        assert.equal(failed[0].process_name, 'load_customers');
        assert.equal(failed[0].alarm, 'open');
        assert.match(failed[0].trace_id, /^[0-9a-f]{32}$/);
        const open = db.sql(sqlTargets.find((t) => t.panel === 'Open alarms').rawSql);
        assert.deepEqual(open, [{ open_alarms: '1' }]);
    });
});
