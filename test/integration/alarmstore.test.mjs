// alarmstore.test.mjs: the `alarmstore` exporter seen from outside (issue 11).
//
// The OpenTelemetry JS SDK sends, over OTLP/HTTP protobuf, spans shaped like the original
// project's traced() helper (success and failure, with every etl.* attribute, counts as
// strings, naive local-time etl.start_time/etl.end_time), Airflow 2.10 and Airflow 3 task
// spans, an error span of a configured service, and spans that are no run; the test then reads
// the database and checks the rows column by column, times in UTC:
//   - SQLite, through the sqlite3 CLI (Debian `sqlite3`);
//   - MariaDB: a real mariadbd (Debian `mariadb-server`) started by the test in its own data
//     directory on a free loopback port, with a user made at start (password authentication),
//     and stopped after; the server is also stopped while runs arrive and started again:
//     every run is stored exactly once.
// Bad input: wrongly typed attributes, a huge stack trace and invalid UTF-8 are stored with
// what is valid, cut to the columns' sizes, and the batch is not lost.
import assert from 'node:assert/strict';
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';

import { requireJs, startCollector, tempDir, TIME_SCALE, waitFor } from '../js/harness.mjs';
import { MariaDB } from '../js/mariadb.mjs';
import { post } from '../js/relay.mjs';
import { fBytes, fMsg, fString, fVarint, tracesProto } from '../js/otlp_build.mjs';

const api = requireJs('@opentelemetry/api');
const { resourceFromAttributes } = requireJs('@opentelemetry/resources');
const { BasicTracerProvider, InMemorySpanExporter, SimpleSpanProcessor } = requireJs('@opentelemetry/sdk-trace-base');
const { ExportResultCode } = requireJs('@opentelemetry/core');
const { OTLPTraceExporter } = requireJs('@opentelemetry/exporter-trace-otlp-proto');

for (const k of Object.keys(process.env)) {
    if (k.startsWith('OTEL_')) {
        delete process.env[k];
    }
}

const S = (ms) => ms * TIME_SCALE;
const FAST_RETRY = '{enabled: true, initial_interval: 100ms, randomization_factor: 0.1, ' +
    'multiplier: 1.5, max_interval: 500ms, max_elapsed_time: 120s}';

function collectorYaml(database, extra = '') {
    return (o) => 'receivers:\n' +
        '  otlp:\n' +
        '    protocols:\n' +
        `      grpc: {endpoint: "127.0.0.1:${o.grpcPort}"}\n` +
        `      http: {endpoint: "127.0.0.1:${o.httpPort}"}\n` +
        'processors:\n' +
        '  batch: {timeout: 50ms}\n' +
        'exporters:\n' +
        '  alarmstore:\n' +
        `    database: ${JSON.stringify(database)}\n` +
        '    error_spans: {services: [fastapi-app]}\n' +
        '    timeout: 2s\n' +
        `    retry_on_failure: ${FAST_RETRY}\n` + extra +
        'service:\n' +
        '  pipelines:\n' +
        '    traces: {receivers: [otlp], processors: [batch], exporters: [alarmstore]}\n';
}

// ---------------------------------------------------------------------------------------------
// The spans

/** [seconds, nanoseconds] of a UTC time given in ms (the SDK's HrTime). */
const hr = (ms) => [Math.floor(ms / 1000), (ms % 1000) * 1e6];
const T0 = Date.UTC(2024, 4, 1, 1, 0, 0); // 2024-05-01 01:00:00 UTC = 10:00 in Seoul

/** The traced() helper's attributes (names as the original writes them; values strings). */
function etlAttrs(process, extra = {}) {
    return {
        'etl.process_name': process, 'etl.group_name': 'sales', 'etl.platform': 'script',
        'etl.script_name': `${process}.py`, 'etl.process_count': '1200', 'etl.duration': '90.5',
        // Naive local times (KST), as the helper writes them: never used.
        'etl.start_time': '2024-05-01 10:00:00', 'etl.end_time': '2024-05-01 10:01:30',
        'etl.source_system_type': 'oracle', 'etl.source_system_name': 'ERP',
        'etl.source_endpoint': 'erp-db:1521/ORCL', 'etl.source_object_name': 'ORDERS',
        'etl.source_count': '1200', 'etl.target_system_type': 'mariadb',
        'etl.target_system_name': 'DW', 'etl.target_endpoint': 'dw:3306/dw',
        'etl.target_object_name': 'fact_orders', 'etl.target_count': '1198', ...extra,
    };
}

/** Send every span of the test through the SDK; returns their ids by name. */
async function sendSpans(c, run) {
    const ids = {};
    const exporter = new OTLPTraceExporter({ url: `${c.httpUrl}/v1/traces`, timeoutMillis: S(10000) });
    const make = (resource) => new BasicTracerProvider({
        resource: resourceFromAttributes(resource), spanProcessors: [new SimpleSpanProcessor(exporter)],
    });
    const etl = make({ 'service.name': 'etl-scripts', 'host.name': 'etl-host-1' });
    const t = etl.getTracer('otelmon.traced');
    const span = (tracer, name, startMs, endMs, attrs, fn) => {
        const s = tracer.startSpan(name, { startTime: hr(startMs), attributes: attrs });
        fn?.(s);
        s.end(hr(endMs));
        ids[name] = { trace: s.spanContext().traceId, span: s.spanContext().spanId };
    };
    span(t, `load_orders${run}`, T0, T0 + 90500, etlAttrs(`load_orders${run}`), (s) => {
        s.setStatus({ code: api.SpanStatusCode.OK });
    });
    span(t, `load_customers${run}`, T0 + 1000, T0 + 3250, etlAttrs(`load_customers${run}`, {
        'etl.error': "ORA-00942: table or view does not exist", 'etl.error_type': 'DatabaseError',
        'etl.stacktrace': 'Traceback (most recent call last):\n  File "load.py", line 3\nDatabaseError',
        'etl.target_count': '0', 'etl.start_time': '2024-05-01T10:00:01.500+09:00',
    }), (s) => {
        s.setStatus({ code: api.SpanStatusCode.ERROR, message: 'DatabaseError' });
    });
    span(t, `plain${run}`, T0, T0 + 5, { 'http.route': '/x' });
    await etl.forceFlush();

    const af2 = make({ 'service.name': 'Airflow', 'host.name': 'scheduler-1' }).getTracer('airflow.jobs');
    span(af2, `extract${run}`, T0 - 60000, T0 + 300000, {
        category: 'scheduler', dag_id: 'daily_sales', task_id: `extract${run}`, state: 'failed', error: true,
        try_number: 2, hostname: 'worker-7', operator: 'PythonOperator',
        start_date: '2024-05-01 01:00:00.123456+00:00', end_date: '2024-05-01 01:05:00+00:00',
    });
    const af3p = make({ 'service.name': 'Airflow', 'host.name': 'api-server-1' });
    const af3 = af3p.getTracer('airflow.api_fastapi');
    span(af3, `task_run.publish${run}`, T0, T0 + 2000, {
        'airflow.dag_id': 'daily_sales', 'airflow.task_id': `publish${run}`,
        'airflow.dag_run.run_id': 'manual__2024-05-01', 'airflow.task_instance.try_number': 1,
        'airflow.task_instance.map_index': -1, 'airflow.task_instance.state': 'success',
    }, (s) => s.setStatus({ code: api.SpanStatusCode.OK }));
    span(af3, `task_run.skipme${run}`, T0, T0 + 2000, {
        'airflow.dag_id': 'daily_sales', 'airflow.task_id': `skipme${run}`,
        'airflow.task_instance.state': 'skipped',
    }, (s) => s.setStatus({ code: api.SpanStatusCode.ERROR }));
    const fa = make({ 'service.name': 'fastapi-app', 'host.name': 'api-1' }).getTracer('fastapi');
    span(fa, `POST /orders${run}`, T0, T0 + 120, {}, (s) => {
        const e = new TypeError('order.total is undefined');
        e.stack = 'TypeError: order.total is undefined\n    at handler (app.js:10:5)';
        s.recordException(e);
        s.setStatus({ code: api.SpanStatusCode.ERROR });
    });
    await af3p.forceFlush();
    await exporter.shutdown();
    return ids;
}

/** A counter of the collector's own metrics (0 when absent). */
async function selfMetric(c, name) {
    const res = await fetch(`http://127.0.0.1:${c.telemetryPort}/metrics`);
    const m = new RegExp(`^${name}\\{[^}]*\\} (\\d+)`, 'm').exec(await res.text());
    return m ? Number(m[1]) : 0;
}

/**
 * 150 runs in one export (more than MariaDB's 64-row chunks), every 7th failed, then the very
 * same spans again (a retry): each run stored once, each failure one alarm. count(sql) runs a
 * COUNT query on the database.
 */
async function bulkTwice(c, count) {
    const mem = new InMemorySpanExporter();
    const provider = new BasicTracerProvider({
        resource: resourceFromAttributes({ 'service.name': 'etl-bulk', 'host.name': 'bulk-host' }),
        spanProcessors: [new SimpleSpanProcessor(mem)],
    });
    const t = provider.getTracer('otelmon.traced');
    for (let i = 0; i < 150; i++) {
        const attrs = { 'etl.process_name': `bulk-${i}`, 'etl.group_name': 'bulk', 'etl.source_count': `${i}` };
        if (i % 7 === 0) {
            attrs['etl.error'] = `failure ${i}`;
        }
        t.startSpan(`bulk-${i}`, { startTime: hr(T0 + i), attributes: attrs }).end(hr(T0 + i + 10));
    }
    const spans = mem.getFinishedSpans();
    const exporter = new OTLPTraceExporter({ url: `${c.httpUrl}/v1/traces`, timeoutMillis: S(10000) });
    for (let round = 0; round < 2; round++) {
        const r = await new Promise((resolve) => exporter.export(spans, resolve));
        assert.equal(r.code, ExportResultCode.SUCCESS, `export ${round}: ${r.error}`);
    }
    await exporter.shutdown();
    await waitFor(async () => await selfMetric(c, 'otelcol_exporter_alarmstore_duplicate_rows_total') >= 150,
        S(20000), '150 duplicates counted');
    assert.equal(count("SELECT COUNT(*) AS n FROM process_executions WHERE group_name = 'bulk'"), 150);
    assert.equal(count("SELECT COUNT(*) AS n FROM process_executions WHERE group_name = 'bulk'" +
        " AND success = 'FAILED'"), 22);
    assert.equal(count("SELECT COUNT(*) AS n FROM alarms WHERE group_name = 'bulk'"), 22);
    assert.equal(count("SELECT COUNT(*) AS n FROM process_executions WHERE group_name = 'bulk'" +
        " AND source_count = 149 AND host_name = 'bulk-host'"), 1);
}

/** 70 runs in one export, one of which the database refuses: the other 69 are stored. */
async function oneRefused(c, count) {
    const exporter = new OTLPTraceExporter({ url: `${c.httpUrl}/v1/traces`, timeoutMillis: S(10000) });
    const keep = new InMemorySpanExporter();
    const p2 = new BasicTracerProvider({
        resource: resourceFromAttributes({ 'service.name': 'etl-refusal' }),
        spanProcessors: [new SimpleSpanProcessor(keep)],
    });
    const t2 = p2.getTracer('otelmon.traced');
    for (let i = 0; i < 70; i++) {
        const name = i === 33 ? 'refuse-me' : `refusal-${i}`;
        t2.startSpan(name, { attributes: { 'etl.process_name': name, 'etl.group_name': 'refusal' } }).end();
    }
    const spans = keep.getFinishedSpans();
    const before = await selfMetric(c, 'otelcol_exporter_alarmstore_refused_rows_total');
    const r = await new Promise((resolve) => exporter.export(spans, resolve));
    assert.equal(r.code, ExportResultCode.SUCCESS);
    await exporter.shutdown();
    await waitFor(async () => await selfMetric(c, 'otelcol_exporter_alarmstore_refused_rows_total') > before,
        S(20000), 'the refused row counted');
    await waitFor(() => count("SELECT COUNT(*) AS n FROM process_executions WHERE group_name = 'refusal'") === 69,
        S(20000), 'the 69 other runs stored');
    assert.match(c.stderr, /the database refused 1 runs for good; they are skipped/);
}

const COLS = ['host_name', 'platform_type', 'group_name', 'process_name', 'script_name', 'success',
    'error_message', 'error_type', 'stack_trace', 'source_system_type', 'source_system_name',
    'source_endpoint', 'source_object_name', 'source_count', 'target_system_type',
    'target_system_name', 'target_endpoint', 'target_object_name', 'target_count', 'start_time',
    'end_time', 'duration_seconds', 'trace_id', 'span_id'];

/** The rows every test expects, by process name (created_at checked apart). */
function expectedRows(ids, run) {
    const etl = (process) => ({
        host_name: 'etl-host-1', platform_type: 'script', group_name: 'sales', process_name: process,
        script_name: `${process}.py`, source_system_type: 'oracle', source_system_name: 'ERP',
        source_endpoint: 'erp-db:1521/ORCL', source_object_name: 'ORDERS', source_count: 1200,
        target_system_type: 'mariadb', target_system_name: 'DW', target_endpoint: 'dw:3306/dw',
        target_object_name: 'fact_orders',
    });
    const none = { error_message: null, error_type: null, stack_trace: null };
    const noEtl = {
        script_name: null, source_system_type: null, source_system_name: null, source_endpoint: null,
        source_object_name: null, source_count: null, target_system_type: null, target_system_name: null,
        target_endpoint: null, target_object_name: null, target_count: null,
    };
    const idsOf = (name) => ({ trace_id: ids[name].trace, span_id: ids[name].span });
    return {
        [`load_orders${run}`]: {
            ...etl(`load_orders${run}`), success: 'SUCCESS', ...none, target_count: 1198,
            start_time: '2024-05-01 01:00:00.000000', end_time: '2024-05-01 01:01:30.500000',
            duration_seconds: 90.5, ...idsOf(`load_orders${run}`),
        },
        [`load_customers${run}`]: {
            ...etl(`load_customers${run}`), success: 'FAILED',
            error_message: 'ORA-00942: table or view does not exist', error_type: 'DatabaseError',
            stack_trace: 'Traceback (most recent call last):\n  File "load.py", line 3\nDatabaseError',
            target_count: 0,
            // etl.start_time carries an offset: it is used (01:00:01.5 UTC); the end is the span's.
            start_time: '2024-05-01 01:00:01.500000', end_time: '2024-05-01 01:00:03.250000',
            duration_seconds: 1.75, ...idsOf(`load_customers${run}`),
        },
        [`extract${run}`]: {
            ...noEtl, host_name: 'worker-7', platform_type: 'airflow', group_name: 'daily_sales',
            process_name: `extract${run}`, success: 'FAILED', error_message: 'Airflow task failed (try 2)',
            error_type: null, stack_trace: null, start_time: '2024-05-01 01:00:00.123456',
            end_time: '2024-05-01 01:05:00.000000', duration_seconds: 299.876544, ...idsOf(`extract${run}`),
        },
        [`publish${run}`]: {
            ...noEtl, host_name: 'api-server-1', platform_type: 'airflow', group_name: 'daily_sales',
            process_name: `publish${run}`, success: 'SUCCESS', ...none,
            start_time: '2024-05-01 01:00:00.000000', end_time: '2024-05-01 01:00:02.000000',
            duration_seconds: 2, ...idsOf(`task_run.publish${run}`),
        },
        [`POST /orders${run}`]: {
            ...noEtl, host_name: 'api-1', platform_type: 'service', group_name: 'fastapi-app',
            process_name: `POST /orders${run}`, success: 'FAILED', error_message: 'order.total is undefined',
            error_type: 'TypeError', stack_trace: 'TypeError: order.total is undefined\n    at handler (app.js:10:5)',
            start_time: '2024-05-01 01:00:00.000000', end_time: '2024-05-01 01:00:00.120000',
            duration_seconds: 0.12, ...idsOf(`POST /orders${run}`),
        },
    };
}

function checkRows(rows, ids, run) {
    const want = expectedRows(ids, run);
    const got = Object.fromEntries(rows.filter((r) => r.process_name.endsWith(run) || r.process_name === `POST /orders${run}`)
        .map((r) => [r.process_name, r]));
    assert.deepEqual(Object.keys(got).sort(), Object.keys(want).sort(), 'the runs stored');
    for (const [name, w] of Object.entries(want)) {
        for (const col of COLS) {
            let v = got[name][col];
            if (col === 'duration_seconds' && v !== null) {
                v = Math.round(Number(v) * 1e6) / 1e6;
            }
            if ((col === 'source_count' || col === 'target_count') && v !== null) {
                v = Number(v);
            }
            assert.deepEqual(v, w[col], `${name}: column ${col}`);
        }
        // created_at: UTC now, give or take a minute.
        const created = Date.parse(`${got[name].created_at.replace(' ', 'T')}Z`);
        assert.ok(Math.abs(created - Date.now()) < 120000, `${name}: created_at ${got[name].created_at} is UTC now`);
    }
}

// ---------------------------------------------------------------------------------------------
// SQLite

function sqliteJson(db, sql) {
    const out = execFileSync('sqlite3', ['-json', '-readonly', db, sql], { encoding: 'utf8' });
    return out.trim() === '' ? [] : JSON.parse(out);
}

// The rows in process_executions; 0 before the exporter made the file and while it has made the
// file but not yet committed its schema (a reader then sees no table, or the lock).
function runsStored(db) {
    if (!existsSync(db)) {
        return 0;
    }
    try {
        return sqliteJson(db, 'SELECT COUNT(*) AS n FROM process_executions')[0].n;
    } catch (e) {
        if (/no such table|database is locked/.test(String(e.stderr))) {
            return 0;
        }
        throw e;
    }
}

describe('alarmstore into SQLite', { timeout: S(120000) }, () => {
    test('every shape of run becomes its row, column by column; others are skipped', async () => {
        const dir = tempDir('otelmon-alarmstore-');
        const db = path.join(dir, 'new', 'dir', 'alarms.db'); // the directories are made
        const c = await startCollector({ yaml: collectorYaml(`sqlite:///${db}`) });
        try {
            await c.check(async () => {
                const ids = await sendSpans(c, '');
                await waitFor(() => runsStored(db) >= 5,
                S(15000), 'five runs in SQLite');
                const rows = sqliteJson(db, 'SELECT * FROM process_executions ORDER BY id');
                assert.equal(rows.length, 5);
                checkRows(rows, ids, '');
                const alarms = sqliteJson(db, 'SELECT a.*, p.process_name AS p FROM alarms a ' +
                    'JOIN process_executions p ON p.id = a.process_execution_id ORDER BY a.id');
                assert.deepEqual(alarms.map((a) => [a.p, a.state, a.notify_attempts, a.group_name]).sort(), [
                    ['POST /orders', 'open', 0, 'fastapi-app'], ['extract', 'open', 0, 'daily_sales'],
                    ['load_customers', 'open', 0, 'sales'],
                ]);
                assert.deepEqual(sqliteJson(db, 'SELECT version FROM schema_version'), [{ version: 2 }]);
                await bulkTwice(c, (q) => sqliteJson(db, q)[0].n);
            });
        } finally {
            await c.stop();
        }
    });

    test('bad input: wrong types, a huge stack trace and invalid UTF-8 are stored, cut to size', async () => {
        const dir = tempDir('otelmon-alarmstore-');
        const db = path.join(dir, 'bad.db');
        const c = await startCollector({ yaml: collectorYaml(`sqlite:///${db}`) });
        try {
            await c.check(async () => {
                // Raw protobuf: the SDK cannot send invalid UTF-8 (the receiver takes it, as otelcol).
                const bad = Buffer.from([0x61, 0xff, 0x62, 0xe2, 0x82, 0x63]);
                const huge = 'x'.repeat(200000);
                const attr = (k, anyValue) => fMsg(9, fString(1, k), fMsg(2, anyValue));
                const str = (v) => fBytes(1, Buffer.isBuffer(v) ? v : Buffer.from(v));
                const spanExtra = Buffer.concat([
                    attr('etl.process_name', fVarint(3, 42)), attr('etl.group_name', fVarint(2, 1)),
                    attr('etl.source_count', str('twelve')), attr('etl.target_count', str(' 12 ')),
                    attr('etl.stacktrace', str(huge)), attr('etl.error', str(bad)),
                    attr('etl.source_system_name', str('y'.repeat(300))), attr('etl.start_time', fVarint(3, 5)),
                ]);
                const st = await post(c.httpPort, '/v1/traces', tracesProto('bad', { spanExtra }).bytes);
                assert.equal(st, 200);
                await waitFor(() => runsStored(db) >= 1,
                S(15000), 'the bad run in SQLite');
                const [r] = sqliteJson(db, 'SELECT process_name, group_name, source_count, target_count, ' +
                    'length(CAST(stack_trace AS BLOB)) AS st, hex(error_message) AS em, success, ' +
                    'length(source_system_name) AS ssn, start_time IS NOT NULL AS has_start FROM process_executions');
                assert.deepEqual(r, {
                    process_name: '42', group_name: 'true', source_count: null, target_count: 12, st: 65535,
                    em: '61EFBFBD62EFBFBDEFBFBD63', success: 'FAILED', ssn: 255, has_start: 1,
                });
            });
        } finally {
            await c.stop();
        }
    });
});

// ---------------------------------------------------------------------------------------------
// MariaDB

/** Undo --batch's escapes of \n, \t and \\ in a value. */
function unescapeBatch(v) {
    return v === null ? null : v.replace(/\\(.)/g, (_, ch) => ({ n: '\n', t: '\t', 0: '\0' }[ch] ?? ch));
}

describe('alarmstore into MariaDB', { timeout: S(240000) }, () => {
    let m;
    before(async () => { m = await MariaDB.create(); });
    after(async () => { await m?.stop(); });

    test('the same rows as in SQLite; the server down while runs arrive loses nothing', async () => {
        const url = `mysql://otelmon:s3cret%21pw@127.0.0.1:${m.port}/otelmon`;
        const c = await startCollector({ yaml: collectorYaml(url) });
        try {
            await c.check(async () => {
                const ids = await sendSpans(c, '');
                const count = () => Number(m.sql('SELECT COUNT(*) AS n FROM process_executions')[0]?.n ?? 0);
                await waitFor(() => { try { return count() >= 5; } catch { return false; } },
                    S(20000), 'five runs in MariaDB');
                const rows = m.sql('SELECT * FROM process_executions ORDER BY id').map((r) =>
                    Object.fromEntries(Object.entries(r).map(([k, v]) => [k, unescapeBatch(v)])));
                checkRows(rows, ids, '');
                assert.deepEqual(m.sql('SELECT COUNT(*) AS n FROM alarms'), [{ n: '3' }]);
                assert.deepEqual(m.sql('SELECT version FROM schema_version'), [{ version: '2' }]);

                // The server goes away; runs keep arriving; it comes back.
                await m.stop();
                const ids2 = await sendSpans(c, '-2');
                await new Promise((resolve) => setTimeout(resolve, S(700)));
                await m.start();
                await waitFor(() => { try { return count() >= 10; } catch { return false; } },
                    S(30000), 'the runs sent while MariaDB was down');
                const rows2 = m.sql('SELECT * FROM process_executions ORDER BY id').map((r) =>
                    Object.fromEntries(Object.entries(r).map(([k, v]) => [k, unescapeBatch(v)])));
                assert.equal(rows2.length, 10, 'every run exactly once');
                checkRows(rows2, ids2, '-2');
                assert.deepEqual(m.sql('SELECT COUNT(*) AS n FROM alarms'), [{ n: '6' }]);
                await bulkTwice(c, (q) => Number(m.sql(q)[0].n));
                // A row the server refuses (a trigger makes it break NOT NULL) is skipped.
                m.sql("CREATE TRIGGER refuse_bad BEFORE INSERT ON process_executions FOR EACH ROW " +
                      "SET NEW.success = IF(NEW.process_name = 'refuse-me', NULL, NEW.success)");
                await oneRefused(c, (q) => Number(m.sql(q)[0].n));
            });
        } finally {
            await c.stop();
        }
    });

    test('notifications from MariaDB: one webhook POST per failure, state kept in the database', async () => {
        m.sql("CREATE DATABASE otelmon_notify; GRANT ALL ON otelmon_notify.* TO 'otelmon'@'127.0.0.1';");
        const q = (sql) => m.sql(`USE otelmon_notify; ${sql}`);
        const hook = await Webhook.start();
        hook.failLeft = 1;
        const url = `mysql://otelmon:s3cret%21pw@127.0.0.1:${m.port}/otelmon_notify`;
        const extra = notifyYaml(['dedup_window: 0s', 'retry: {initial_interval: 100ms, max_interval: 400ms}',
            `webhook: {endpoint: "http://127.0.0.1:${hook.port}/"}`]);
        const c = await startCollector({ yaml: collectorYaml(url, extra) });
        try {
            await c.check(async () => {
                const ctx = await sendRuns(c, [{ process: 'm1', error: 'one' }, { process: 'm2', error: 'two' }, { process: 'm3' }]);
                await waitFor(() => hook.posts.length >= 2, S(20000), 'two POSTs');
                const byProc = Object.fromEntries(hook.posts.map((p) => [p.body.process, p.body]));
                assert.equal(byProc.m1.error_message, 'one');
                assert.equal(byProc.m1.trace_id, ctx[0].traceId);
                assert.equal(Date.parse(byProc.m2.end_time), T0 + 1000 + 2500);
                await waitFor(() => Number(q("SELECT COUNT(*) AS n FROM alarms WHERE state = 'notified'")[0].n) === 2,
                    S(10000), 'the alarms notified in MariaDB');
                assert.deepEqual(q('SELECT COUNT(*) AS n FROM alert_history'), [{ n: '2' }]);
                assert.deepEqual(q('SELECT SUM(notify_attempts) AS n FROM alarms'), [{ n: '3' }], 'one retried after a 500');
                assert.equal(hook.posts.length, 2);
            });
        } finally {
            await c.stop();
            await hook.close();
        }
    });
});

// ---------------------------------------------------------------------------------------------
// Notifications: a webhook (a node HTTP server of the test) and e-mail (a real SMTP server,
// test/lib/smtp_server.py on aiosmtpd), with SQLite.

/** A webhook receiver on a free loopback port: answers 500 while failLeft > 0, else 200. */
class Webhook {
    constructor() {
        this.posts = [];
        this.failed = [];
        this.failLeft = 0;
    }

    static async start() {
        const w = new Webhook();
        await w.listen(0);
        return w;
    }

    async listen(port) {
        this.server = http.createServer((req, res) => {
            const chunks = [];
            req.on('data', (d) => chunks.push(d));
            req.on('end', () => {
                const rec = { headers: req.headers, method: req.method, url: req.url, at: Date.now(),
                    body: JSON.parse(Buffer.concat(chunks).toString('utf8')) };
                if (this.failLeft > 0) {
                    this.failLeft--;
                    this.failed.push(rec);
                    res.writeHead(500).end('busy');
                    return;
                }
                this.posts.push(rec);
                res.writeHead(200, { 'content-type': 'text/plain' }).end('ok');
            });
        });
        await new Promise((resolve) => this.server.listen(port, '127.0.0.1', resolve));
        this.port = this.server.address().port;
    }

    /** Stop listening: the collector's next attempts get "connection refused". */
    async close() {
        this.server.closeAllConnections();
        await new Promise((resolve) => this.server.close(resolve));
    }
}

/** smtp_server.py on a free port; messages parsed by Python's email package. */
class Smtpd {
    static async start() {
        const s = new Smtpd();
        s.dir = tempDir('otelmon-smtp-');
        s.proc = spawn('/usr/bin/python3', ['-W', 'ignore', path.join(import.meta.dirname, '..', 'lib', 'smtp_server.py'),
            '--dir', s.dir], { stdio: ['ignore', 'pipe', 'inherit'] });
        process.once('exit', () => s.proc.kill('SIGKILL'));
        let out = '';
        s.port = await new Promise((resolve, reject) => {
            s.proc.stdout.on('data', (d) => {
                out += d;
                const m = /PORT (\d+)/.exec(out);
                if (m) {
                    resolve(Number(m[1]));
                }
            });
            s.proc.once('exit', () => reject(new Error('smtp_server.py exited')));
        });
        return s;
    }

    files() {
        return readdirSync(this.dir).filter((f) => f.endsWith('.eml')).sort((a, b) => parseInt(a) - parseInt(b));
    }

    /** The messages so far: {subject, from, to, envelopeTo, text, html}. */
    messages() {
        const py = 'import email, json, sys\nfrom email import policy\nout = []\n' +
            'for f in sys.argv[1:]:\n' +
            '    m = email.message_from_binary_file(open(f, "rb"), policy=policy.default)\n' +
            '    d = {"subject": str(m["subject"]), "from": str(m["from"]), "to": str(m["to"]),\n' +
            '         "envelopeTo": str(m["X-Envelope-To"]), "type": m.get_content_type()}\n' +
            '    for p in m.walk():\n' +
            '        if p.get_content_maintype() == "text":\n' +
            '            d[p.get_content_subtype()] = p.get_content()\n' +
            '    out.append(d)\n' +
            'print(json.dumps(out))\n';
        const files = this.files().map((f) => path.join(this.dir, f));
        return files.length === 0 ? [] : JSON.parse(execFileSync('python3', ['-c', py, ...files], { encoding: 'utf8' }));
    }

    stop() {
        this.proc.kill('SIGTERM');
    }
}

const STACK = Array.from({ length: 30 }, (_, i) => `  File "job.py", line ${i + 1}, in <step${i}>`).join('\n');

/** Runs through the SDK in one export: [{process, group?, error?}]; their span contexts. */
async function sendRuns(c, runs, startMs = T0) {
    const mem = new InMemorySpanExporter();
    const provider = new BasicTracerProvider({
        resource: resourceFromAttributes({ 'service.name': 'etl-scripts', 'host.name': 'etl-host-9' }),
        spanProcessors: [new SimpleSpanProcessor(mem)],
    });
    const t = provider.getTracer('otelmon.traced');
    const ctx = [];
    runs.forEach((r, i) => {
        const attrs = { 'etl.process_name': r.process, 'etl.group_name': r.group ?? 'nightly', 'etl.platform': 'script' };
        if (r.error) {
            Object.assign(attrs, { 'etl.error': r.error, 'etl.error_type': 'ValueError', 'etl.stacktrace': `Traceback:\n${STACK}` });
        }
        const s = t.startSpan(r.process, { startTime: hr(startMs + i * 1000), attributes: attrs });
        if (r.error) {
            s.setStatus({ code: api.SpanStatusCode.ERROR });
        }
        s.end(hr(startMs + i * 1000 + 2500));
        ctx.push(s.spanContext());
    });
    const exporter = new OTLPTraceExporter({ url: `${c.httpUrl}/v1/traces`, timeoutMillis: S(10000) });
    const res = await new Promise((resolve) => exporter.export(mem.getFinishedSpans(), resolve));
    assert.equal(res.code, ExportResultCode.SUCCESS, `export: ${res.error}`);
    await exporter.shutdown();
    return ctx;
}

function notifyYaml(lines) {
    return '    notify:\n' + lines.map((l) => `      ${l}\n`).join('');
}

describe('alarmstore notifications (SQLite)', { timeout: S(180000) }, () => {
    test('one webhook POST and one e-mail per failure, field by field', async () => {
        const dir = tempDir('otelmon-alarmstore-');
        const db = path.join(dir, 'n.db');
        const hook = await Webhook.start();
        const smtp = await Smtpd.start();
        const extra = notifyYaml([
            'dedup_window: 1h',
            `webhook: {endpoint: "http://127.0.0.1:${hook.port}/hooks/secret-path", headers: {X-Token: tok-s3cret}}`,
            `email: {endpoint: "smtp://127.0.0.1:${smtp.port}", starttls: false, from: "otelmon@example.com", to: ["ops@example.com", "dev@example.com"]}`,
        ]);
        const c = await startCollector({ yaml: collectorYaml(`sqlite:///${db}`, extra) });
        try {
            await c.check(async () => {
                const ctx = await sendRuns(c, [
                    { process: 'load_a', error: 'bad value <b>&"x"' },
                    { process: 'load_ok' },
                    { process: 'load_b', group: 'hourly', error: 'disk full' },
                ]);
                await waitFor(() => hook.posts.length >= 2 && smtp.files().length >= 2, S(20000), 'two POSTs and two mails');
                assert.equal(hook.posts.length, 2);
                const byProc = Object.fromEntries(hook.posts.map((p) => [p.body.process, p]));
                assert.deepEqual(Object.keys(byProc).sort(), ['load_a', 'load_b']);
                const a = byProc.load_a;
                assert.equal(a.method, 'POST');
                assert.equal(a.url, '/hooks/secret-path');
                assert.equal(a.headers['x-token'], 'tok-s3cret');
                assert.match(a.headers['content-type'], /^application\/json/);
                const b = a.body;
                assert.equal(b.kind, 'alarm');
                assert.equal(b.count, 1);
                assert.equal(b.group, 'nightly');
                assert.equal(b.host, 'etl-host-9');
                assert.equal(b.platform, 'script');
                assert.equal(b.error_type, 'ValueError');
                assert.equal(b.error_message, 'bad value <b>&"x"');
                assert.equal(b.trace_id, ctx[0].traceId);
                assert.equal(Date.parse(b.start_time), T0);
                assert.equal(Date.parse(b.end_time), T0 + 2500);
                assert.match(b.start_time, /^2024-05-01T01:00:00(\.0+)?Z$/);
                assert.equal(b.text, 'OtelMon: FAILED nightly/load_a on etl-host-9: ValueError: bad value <b>&"x"');
                assert.equal(byProc.load_b.body.group, 'hourly');
                assert.equal(Date.parse(byProc.load_b.body.end_time), T0 + 2000 + 2500);

                const mails = smtp.messages();
                assert.equal(mails.length, 2);
                const m = mails.find((x) => x.subject.includes('load_a'));
                assert.equal(m.subject, 'OtelMon: FAILED nightly/load_a on etl-host-9: ValueError: bad value <b>&"x"');
                assert.equal(m.type, 'multipart/alternative');
                assert.equal(m.envelopeTo, 'ops@example.com,dev@example.com');
                for (const want of ['Group       nightly', 'Process     load_a', 'Host        etl-host-9',
                    'Started     2024-05-01T01:00:00Z', 'Ended       2024-05-01T01:00:02.5Z',
                    'Error type  ValueError', 'Error       bad value <b>&"x"', `Trace ID    ${ctx[0].traceId}`,
                    '  File "job.py", line 19, in <step18>']) {
                    assert.ok(m.plain.includes(want), `text part has ${want}:\n${m.plain}`);
                }
                assert.ok(!m.plain.includes('line 20,'), 'only the first 20 lines of the stack trace');
                assert.ok(m.html.includes('<td>bad value &lt;b&gt;&amp;&quot;x&quot;</td>'), m.html);
                assert.ok(m.html.includes('in &lt;step0&gt;'), 'the stack trace is escaped');
                assert.ok(!m.html.includes('<b>&'), 'no raw HTML from the data');

                await waitFor(() => sqliteJson(db, "SELECT COUNT(*) AS n FROM alarms WHERE state = 'notified'")[0].n === 2,
                    S(10000), 'both alarms notified');
                const rows = sqliteJson(db, 'SELECT state, notify_attempts, notifiers_done, last_error, notified_at IS NOT NULL AS sent FROM alarms');
                assert.deepEqual(rows, [
                    { state: 'notified', notify_attempts: 1, notifiers_done: 3, last_error: null, sent: 1 },
                    { state: 'notified', notify_attempts: 1, notifiers_done: 3, last_error: null, sent: 1 }]);
                assert.equal(sqliteJson(db, 'SELECT COUNT(*) AS n FROM alert_history')[0].n, 2);
                const metrics = await (await fetch(`http://127.0.0.1:${c.telemetryPort}/metrics`)).text();
                assert.match(metrics, /otelcol_exporter_alarmstore_notifications_sent_total\{[^}]*notifier="webhook"[^}]*\} 2/);
                assert.match(metrics, /otelcol_exporter_alarmstore_notifications_sent_total\{[^}]*notifier="email"[^}]*\} 2/);
            });
        } finally {
            await c.stop();
            await hook.close();
            smtp.stop();
        }
        assert.ok(!c.stderr.includes('tok-s3cret') && !c.stderr.includes('secret-path'), 'no secret in the log');
    });

    test('dedup: 5 failures in a 2s window send 1 at once and 1 counting 4', async () => {
        const dir = tempDir('otelmon-alarmstore-');
        const db = path.join(dir, 'd.db');
        const hook = await Webhook.start();
        const extra = notifyYaml(['dedup_window: 2s', `webhook: {endpoint: "http://127.0.0.1:${hook.port}/"}`]);
        const c = await startCollector({ yaml: collectorYaml(`sqlite:///${db}`, extra) });
        try {
            await c.check(async () => {
                const t0 = Date.now();
                await sendRuns(c, [{ process: 'flaky', error: 'e1' }]);
                await waitFor(() => hook.posts.length >= 1, S(10000), 'the first failure notified');
                assert.equal(hook.posts[0].body.count, 1);
                assert.ok(hook.posts[0].at - t0 < 1900, 'the first failure is notified at once');
                await sendRuns(c, [2, 3, 4, 5].map((i) => ({ process: 'flaky', error: `e${i}` })), T0 + 10000);
                await waitFor(() => hook.posts.length >= 2, S(15000), 'the counting notification');
                const second = hook.posts[1];
                assert.equal(second.body.count, 4);
                assert.equal(second.body.alarm_ids.length, 4);
                assert.equal(second.body.error_message, 'e5', 'the latest failure is shown');
                assert.equal(Date.parse(second.body.first_end_time), T0 + 10000 + 2500);
                assert.match(second.body.text, /^OtelMon: 4 failures of nightly\/flaky on etl-host-9/);
                assert.ok(second.at - hook.posts[0].at >= 1900, 'at the end of the window');
                await waitFor(() => sqliteJson(db, 'SELECT COUNT(*) AS n FROM alert_history')[0].n === 5, S(5000),
                    'five runs in alert_history');
                assert.equal(sqliteJson(db, "SELECT COUNT(*) AS n FROM alarms WHERE state = 'notified'")[0].n, 5);
                assert.equal(hook.posts.length, 2);
            });
        } finally {
            await c.stop();
            await hook.close();
        }
    });

    test('digest a few seconds ahead: one summary of the failures not notified', async () => {
        const dir = tempDir('otelmon-alarmstore-');
        const db = path.join(dir, 'g.db');
        const hook = await Webhook.start();
        const smtp = await Smtpd.start();
        const at = new Date(Date.now() + S(4000)).toISOString().slice(11, 19); // HH:MM:SS UTC
        const extra = notifyYaml([
            'immediate: false', `digest: {at: "${at}"}`,
            `webhook: {endpoint: "http://127.0.0.1:${hook.port}/"}`,
            `email: {endpoint: "smtp://127.0.0.1:${smtp.port}", starttls: false, from: "otelmon@example.com", to: ["ops@example.com"]}`,
        ]);
        const c = await startCollector({ yaml: collectorYaml(`sqlite:///${db}`, extra) });
        try {
            await c.check(async () => {
                await sendRuns(c, [{ process: 'p1', error: 'boom 1' }, { process: 'p2', error: 'boom 2' }, { process: 'ok' }]);
                await waitFor(() => hook.posts.length >= 1 && smtp.files().length >= 1, S(20000), 'the digest');
                const d = hook.posts[0].body;
                assert.equal(d.kind, 'digest');
                assert.equal(d.count, 2);
                assert.deepEqual(d.failures.map((f) => [f.process, f.error_message, f.host]),
                    [['p1', 'boom 1', 'etl-host-9'], ['p2', 'boom 2', 'etl-host-9']]);
                assert.match(d.text, /^OtelMon daily digest: 2 failed runs not notified in the last 24 hours\n- nightly\/p1 on etl-host-9 at 2024-05-01T01:00:02.5Z: boom 1/);
                const [m] = smtp.messages();
                assert.equal(m.subject, 'OtelMon daily digest: 2 failed runs not notified in the last 24 hours');
                assert.ok(m.plain.includes('Process     p2') && m.html.includes('<td>boom 1</td>'), m.plain);
                await waitFor(() => sqliteJson(db, "SELECT COUNT(*) AS n FROM alarms WHERE state = 'notified'" +
                    ' AND digested_at IS NOT NULL')[0].n === 2, S(5000), 'the alarms digested');
                assert.equal(sqliteJson(db, 'SELECT COUNT(*) AS n FROM alert_history')[0].n, 2);
                assert.equal(hook.posts.length, 1, 'nothing sent at once with immediate: false');
            });
        } finally {
            await c.stop();
            await hook.close();
            smtp.stop();
        }
    });

    test('webhook down (500s, then refused) then up, and restarts: every alarm notified exactly once', async () => {
        const dir = tempDir('otelmon-alarmstore-');
        const db = path.join(dir, 'r.db');
        const hook = await Webhook.start();
        const port = hook.port;
        const extra = notifyYaml(['dedup_window: 0s', 'retry: {initial_interval: 100ms, max_interval: 400ms}',
            `webhook: {endpoint: "http://127.0.0.1:${port}/", timeout: 2s}`]);
        const yaml = collectorYaml(`sqlite:///${db}`, extra);
        const notifiedIds = () => hook.posts.flatMap((p) => p.body.alarm_ids);
        let c = await startCollector({ yaml });
        try {
            await c.check(async () => {
                hook.failLeft = 4;
                await sendRuns(c, [1, 2, 3].map((i) => ({ process: `down${i}`, error: `x${i}` })));
                await waitFor(() => hook.failed.length >= 4, S(15000), 'four 500 answers');
                await hook.close();
                // Refused connections now: wait for a retry to record one.
                await waitFor(() => sqliteJson(db, "SELECT COUNT(*) AS n FROM alarms WHERE last_error LIKE '%webhook:%'" +
                    " AND last_error NOT LIKE '%HTTP 500%'")[0].n >= 1, S(15000), 'a refused connection recorded');
                await hook.listen(port);
                await waitFor(() => notifiedIds().length >= 3, S(15000), 'the three alarms notified');
                await waitFor(() => sqliteJson(db, "SELECT COUNT(*) AS n FROM alarms WHERE state = 'notified'")[0].n === 3,
                    S(5000), 'three alarms notified in the database');
                const rows = sqliteJson(db, 'SELECT notify_attempts FROM alarms');
                assert.ok(rows.some((r) => r.notify_attempts > 1), 'retried');
            });
            // Pending alarms across a restart: the webhook is down while they arrive.
            await hook.close();
            await c.check(async () => {
                await sendRuns(c, [4, 5].map((i) => ({ process: `down${i}`, error: `x${i}` })), T0 + 60000);
                await waitFor(() => sqliteJson(db, "SELECT COUNT(*) AS n FROM alarms WHERE state = 'open'" +
                    ' AND notify_attempts >= 1')[0].n === 2, S(15000), 'two alarms tried and pending');
            });
            await c.stop();
            await hook.listen(port);
            c = await startCollector({ yaml });
            await c.check(async () => {
                await waitFor(() => notifiedIds().length >= 5, S(15000), 'the pending alarms sent after the restart');
            });
            await c.stop();
            // Once more: nothing is sent again; a new failure goes out alone.
            c = await startCollector({ yaml });
            await c.check(async () => {
                await sendRuns(c, [{ process: 'down6', error: 'x6' }], T0 + 120000);
                await waitFor(() => notifiedIds().length >= 6, S(15000), 'the new alarm');
                const ids = notifiedIds();
                assert.equal(new Set(ids).size, 6, `each alarm once: ${ids}`);
                assert.equal(ids.length, 6, `each alarm once: ${ids}`);
                assert.equal(sqliteJson(db, 'SELECT COUNT(*) AS n FROM alert_history')[0].n, 6);
            });
        } finally {
            await c.stop();
            await hook.close();
        }
    });
});
