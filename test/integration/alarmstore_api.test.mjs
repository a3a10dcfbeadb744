// alarmstore_api.test.mjs: the alarmstore exporter's query API and page (issue 11, `api:`),
// seen from outside. The OpenTelemetry JS SDK sends ETL spans shaped like the original
// project's traced() helper (a success, a failure, and a series of runs for the pages); the
// test then reads them back through the API:
//   - /api/v1/executions and /api/v1/alarms: the items column by column (times RFC 3339 UTC),
//     every filter, pagination by cursor across pages with no duplicate and no gap (also while
//     new runs arrive), the 400s of bad parameters, 404 and 405;
//   - the page in headless Chromium (Debian `chromium`): a real PNG screenshot, and the DOM
//     holds the failed run with its trace link (the template's {trace_id} replaced);
//   - a bearer token (the bearertokenauth extension, `auth: {authenticator: ...}` as the OTLP
//     receiver takes it): 401 without, 200 with; and TLS (test/js/pki.mjs's certificates);
//   - a real MariaDB server (test/js/mariadb.mjs): the same items, and 503 while
//     the server is down, 200 again once it is back.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readFileSync, statSync } from 'node:fs';
import https from 'node:https';
import path from 'node:path';
import { describe, test } from 'node:test';

import { requireJs, startCollector, tempDir, TIME_SCALE, waitFor } from '../js/harness.mjs';
import { MariaDB } from '../js/mariadb.mjs';
import { makePki } from '../js/pki.mjs';

const api = requireJs('@opentelemetry/api');
const { resourceFromAttributes } = requireJs('@opentelemetry/resources');
const { BasicTracerProvider, SimpleSpanProcessor } = requireJs('@opentelemetry/sdk-trace-base');
const { OTLPTraceExporter } = requireJs('@opentelemetry/exporter-trace-otlp-proto');

for (const k of Object.keys(process.env)) {
    if (k.startsWith('OTEL_')) {
        delete process.env[k];
    }
}

const S = (ms) => ms * TIME_SCALE;
const TEMPLATE = 'http://grafana.example:3000/explore?left={"q":"{trace_id}"}&x=1';
const API_RE = /alarmstore API listening on \S*:(\d+)/;

function collectorYaml(database, apiExtra = '', top = '') {
    return (o) => 'receivers:\n' +
        '  otlp:\n' +
        '    protocols:\n' +
        `      grpc: {endpoint: "127.0.0.1:${o.grpcPort}"}\n` +
        `      http: {endpoint: "127.0.0.1:${o.httpPort}"}\n` +
        top +
        'processors:\n' +
        '  batch: {timeout: 20ms}\n' +
        'exporters:\n' +
        '  alarmstore:\n' +
        `    database: ${JSON.stringify(database)}\n` +
        '    timeout: 2s\n' +
        '    retry_on_failure: {enabled: true, initial_interval: 100ms, max_interval: 500ms, max_elapsed_time: 120s}\n' +
        '    api:\n' +
        '      endpoint: "127.0.0.1:0"\n' +
        `      trace_url_template: ${JSON.stringify(TEMPLATE)}\n` +
        apiExtra +
        'service:\n' +
        (top ? '  extensions: [bearertokenauth]\n' : '') +
        '  pipelines:\n' +
        '    traces: {receivers: [otlp], processors: [batch], exporters: [alarmstore]}\n';
}

async function startWithApi(yaml) {
    const c = await startCollector({ yaml });
    await c.check(() => waitFor(() => c.listeningPort(API_RE) > 0, S(10000), 'the API\'s log line'));
    // The writer makes the schema at start; until then the API answers 503.
    await c.check(() => waitFor(() => /database ready/.test(c.stderr), S(20000), '"database ready"'));
    c.apiPort = c.listeningPort(API_RE);
    c.api = `http://127.0.0.1:${c.apiPort}`;
    return c;
}

// ---------------------------------------------------------------------------------------------
// The spans

const hr = (ms) => [Math.floor(ms / 1000), (ms % 1000) * 1e6];
const T0 = Date.UTC(2024, 4, 1, 1, 0, 0);

function etlAttrs(process, extra = {}) {
    return {
        'etl.process_name': process, 'etl.group_name': 'sales', 'etl.platform': 'script',
        'etl.script_name': `${process}.py`, 'etl.source_system_type': 'oracle', 'etl.source_system_name': 'ERP',
        'etl.source_endpoint': 'erp-db:1521/ORCL', 'etl.source_object_name': 'ORDERS', 'etl.source_count': '1200',
        'etl.target_system_type': 'mariadb', 'etl.target_system_name': 'DW', 'etl.target_endpoint': 'dw:3306/dw',
        'etl.target_object_name': 'fact_orders', 'etl.target_count': '1198', ...extra,
    };
}

/** A success, a failure (with <markup> in its message) and n runs of group 'bulk' (every
 * third failed, one hour apart from T0 + 1 day). Returns the ids by span name. */
async function sendSpans(c, n = 0, tag = '') {
    const ids = {};
    const exporter = new OTLPTraceExporter({ url: `${c.httpUrl}/v1/traces`, timeoutMillis: S(10000) });
    const provider = new BasicTracerProvider({
        resource: resourceFromAttributes({ 'service.name': 'etl-scripts', 'host.name': 'etl-host-1' }),
        spanProcessors: [new SimpleSpanProcessor(exporter)],
    });
    const t = provider.getTracer('otelmon.traced');
    const span = (name, startMs, endMs, attrs, status) => {
        const s = t.startSpan(name, { startTime: hr(startMs), attributes: attrs });
        if (status) {
            s.setStatus(status);
        }
        s.end(hr(endMs));
        ids[name] = { trace: s.spanContext().traceId, span: s.spanContext().spanId };
    };
    if (tag === '') {
        span('load_orders', T0, T0 + 90500, etlAttrs('load_orders'), { code: api.SpanStatusCode.OK });
        span('load_customers', T0 + 1000, T0 + 3250, etlAttrs('load_customers', {
            'etl.error': 'ORA-00942: <table> & "view" do not exist', 'etl.error_type': 'DatabaseError',
            'etl.target_count': '0',
        }), { code: api.SpanStatusCode.ERROR, message: 'DatabaseError' });
    }
    for (let i = 0; i < n; i++) {
        const start = T0 + 86400000 + i * 3600000;
        const attrs = { 'etl.process_name': `bulk${tag}-${i}`, 'etl.group_name': 'bulk', 'etl.platform': 'nifi' };
        if (i % 3 === 0) {
            attrs['etl.error'] = `failure ${i}`;
        }
        span(`bulk${tag}-${i}`, start, start + 1000, attrs);
    }
    await provider.forceFlush();
    await exporter.shutdown();
    return ids;
}

// ---------------------------------------------------------------------------------------------
// HTTP

async function get(c, p, headers = {}) {
    const res = await fetch(`${c.api}${p}`, { headers });
    const text = await res.text();
    let body = text;
    if ((res.headers.get('content-type') ?? '').startsWith('application/json')) {
        body = JSON.parse(text);
    }
    return { status: res.status, body, headers: res.headers };
}

async function items(c, p, headers) {
    const r = await get(c, p, headers);
    assert.equal(r.status, 200, `${p}: ${JSON.stringify(r.body)}`);
    return r.body;
}

/** Every item of a list, page by page (limit per page); checks each page's shape. */
async function allPages(c, p, limit, between) {
    const out = [];
    let cursor = null;
    let pages = 0;
    do {
        const sep = p.includes('?') ? '&' : '?';
        const b = await items(c, `${p}${sep}limit=${limit}${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`);
        assert.ok(b.items.length <= limit);
        if (b.next_cursor !== null) {
            assert.equal(b.items.length, limit, 'a page before the last is full');
        }
        out.push(...b.items);
        cursor = b.next_cursor;
        pages++;
        if (between) {
            await between(pages);
        }
    } while (cursor !== null);
    return { items: out, pages };
}

/** The executions items of the success and the failure, column by column. */
function checkRuns(list, ids) {
    const by = Object.fromEntries(list.map((r) => [r.process_name, r]));
    const common = {
        host_name: 'etl-host-1', platform_type: 'script', group_name: 'sales',
        source_system_type: 'oracle', source_system_name: 'ERP', source_endpoint: 'erp-db:1521/ORCL',
        source_object_name: 'ORDERS', source_count: 1200, target_system_type: 'mariadb',
        target_system_name: 'DW', target_endpoint: 'dw:3306/dw', target_object_name: 'fact_orders',
        stack_trace: null,
    };
    const want = {
        load_orders: {
            ...common, process_name: 'load_orders', script_name: 'load_orders.py', success: 'SUCCESS',
            error_message: null, error_type: null, target_count: 1198,
            start_time: '2024-05-01T01:00:00.000000Z', end_time: '2024-05-01T01:01:30.500000Z',
            duration_seconds: 90.5, trace_id: ids.load_orders.trace, span_id: ids.load_orders.span,
        },
        load_customers: {
            ...common, process_name: 'load_customers', script_name: 'load_customers.py', success: 'FAILED',
            error_message: 'ORA-00942: <table> & "view" do not exist', error_type: 'DatabaseError',
            target_count: 0, start_time: '2024-05-01T01:00:01.000000Z', end_time: '2024-05-01T01:00:03.250000Z',
            duration_seconds: 2.25, trace_id: ids.load_customers.trace, span_id: ids.load_customers.span,
        },
    };
    const COLS = ['id', 'host_name', 'platform_type', 'group_name', 'process_name', 'script_name', 'success',
        'error_message', 'error_type', 'stack_trace', 'source_system_type', 'source_system_name',
        'source_endpoint', 'source_object_name', 'source_count', 'target_system_type', 'target_system_name',
        'target_endpoint', 'target_object_name', 'target_count', 'start_time', 'end_time', 'duration_seconds',
        'created_at', 'trace_id', 'span_id'];
    for (const [name, w] of Object.entries(want)) {
        const got = by[name];
        assert.ok(got, `${name} listed`);
        assert.deepEqual(Object.keys(got), COLS, `${name}: the table's columns, in order`);
        for (const [col, v] of Object.entries(w)) {
            assert.deepEqual(got[col], v, `${name}: column ${col}`);
        }
        assert.ok(Number.isInteger(got.id) && got.id > 0);
        assert.match(got.created_at, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$/);
        assert.ok(Math.abs(Date.parse(got.created_at) - Date.now()) < 120000, `${name}: created_at is UTC now`);
    }
}

/** The API's behaviour on a collector holding sendSpans(c, 25)'s runs. */
async function checkApi(c, ids) {
    // Newest first; every column.
    const all = await items(c, '/api/v1/executions');
    assert.equal(all.items.length, 27);
    assert.equal(all.next_cursor, null);
    const idList = all.items.map((r) => r.id);
    assert.deepEqual(idList, [...idList].sort((a, b) => b - a), 'newest (highest id) first');
    checkRuns(all.items, ids);

    // Filters.
    const names = async (q) => (await items(c, `/api/v1/executions?${q}`)).items.map((r) => r.process_name);
    assert.deepEqual((await names('status=FAILED')).length, 1 + 9);
    assert.ok((await names('status=FAILED')).includes('load_customers'));
    assert.deepEqual((await names('status=SUCCESS&group=sales')), ['load_orders']);
    assert.deepEqual(await names('process=load_customers'), ['load_customers']);
    assert.deepEqual((await names('platform=nifi')).length, 25);
    assert.deepEqual((await names('group=bulk&platform=script')), []);
    // Run i of the bulk ends at 2024-05-02 (01 + i):00:01 UTC; since is inclusive, until not.
    assert.deepEqual(await names('since=2024-05-02T03:00:00Z&until=2024-05-02T05:00:01Z'), ['bulk-3', 'bulk-2']);
    assert.deepEqual(await names('since=2024-05-02T12:00:01%2B09:00&until=2024-05-02T04:00:00.5%2B00:00'),
        ['bulk-2']);
    assert.deepEqual(await names('group=b%75lk&process=bulk-1%30'), ['bulk-10'], '%-escapes decoded');
    assert.deepEqual(await names('process=a+b'), [], '+ is a space');

    // Pagination: 27 runs in pages of 4, no duplicate, no gap, the same order as one page.
    const paged = await allPages(c, '/api/v1/executions', 4);
    assert.equal(paged.pages, 7);
    assert.deepEqual(paged.items.map((r) => r.id), idList);
    const failedPaged = await allPages(c, '/api/v1/executions?status=FAILED', 3);
    assert.deepEqual(failedPaged.items.map((r) => r.id), all.items.filter((r) => r.success === 'FAILED').map((r) => r.id));

    // Alarms: one per failure, open.
    const alarms = await items(c, '/api/v1/alarms');
    assert.equal(alarms.items.length, 10);
    const cust = alarms.items.find((a) => a.process_name === 'load_customers');
    const custRun = all.items.find((r) => r.process_name === 'load_customers');
    assert.deepEqual(Object.keys(cust), ['id', 'process_execution_id', 'platform_type', 'group_name',
        'process_name', 'end_time', 'state', 'notify_attempts', 'next_attempt_at', 'last_error',
        'notified_at', 'created_at']);
    assert.deepEqual({ ...cust, id: 0, created_at: '' }, {
        id: 0, process_execution_id: custRun.id, platform_type: 'script', group_name: 'sales',
        process_name: 'load_customers', end_time: '2024-05-01T01:00:03.250000Z', state: 'open',
        notify_attempts: 0, next_attempt_at: null, last_error: null, notified_at: null, created_at: '',
    });
    assert.equal((await items(c, '/api/v1/alarms?state=open&group=bulk')).items.length, 9);
    assert.equal((await items(c, '/api/v1/alarms?state=closed')).items.length, 0);
    assert.equal((await items(c, '/api/v1/alarms?process=bulk-3&since=2024-05-02T00:00:00Z')).items.length, 1);
    const alarmPages = await allPages(c, '/api/v1/alarms', 4);
    assert.deepEqual(alarmPages.items.map((a) => a.id), alarms.items.map((a) => a.id));

    // Bad parameters: 400 with a message.
    const bad = [
        ['/api/v1/executions?colour=red', /unknown parameter "colour"/],
        ['/api/v1/executions?status=failed', /status must be SUCCESS or FAILED/],
        ['/api/v1/executions?since=yesterday', /since must be an RFC 3339 time/],
        ['/api/v1/executions?until=2024-05-01T10:00:00', /until must be an RFC 3339 time/],
        ['/api/v1/executions?since=2024-05-01T10:00:00+09:00', /%2B/],
        ['/api/v1/executions?limit=0', /limit must be an integer from 1 to 1000/],
        ['/api/v1/executions?limit=1001', /limit must be/],
        ['/api/v1/executions?limit=ten', /limit must be/],
        ['/api/v1/executions?cursor=zzz', /bad cursor/],
        ['/api/v1/executions?status=FAILED&status=SUCCESS', /status given twice/],
        ['/api/v1/executions?state=open', /unknown parameter "state"/],
        ['/api/v1/alarms?status=FAILED', /unknown parameter "status"/],
        ['/api/v1/executions?group=%zz', /bad %-escape/],
        ['/api/v1/executions?group=%ff', /not valid UTF-8/],
        ['/api/v1/executions?since=2024-05-02T00:00:00Z&until=2024-05-01T00:00:00Z', /until must be after since/],
    ];
    const acursor = (await items(c, '/api/v1/alarms?limit=1')).next_cursor;
    bad.push([`/api/v1/executions?cursor=${acursor}`, /bad cursor/]);
    for (const [p, re] of bad) {
        const r = await get(c, p);
        assert.equal(r.status, 400, p);
        assert.match(r.headers.get('content-type'), /^application\/json/);
        assert.match(r.body.error, re, p);
    }
    // Other paths, other methods.
    for (const p of ['/api/v1/nope', '/api/v1/executions/', '/index.html', '/api/v2/alarms']) {
        assert.equal((await get(c, p)).status, 404, p);
    }
    for (const [m, p] of [['POST', '/api/v1/executions'], ['DELETE', '/api/v1/alarms'], ['PUT', '/']]) {
        const res = await fetch(`${c.api}${p}`, { method: m });
        assert.equal(res.status, 405, `${m} ${p}`);
        assert.equal(res.headers.get('allow'), 'GET, HEAD');
        await res.arrayBuffer();
    }
    // A refusal is given from the headers: a large body is not read first.
    const big = await fetch(`${c.api}/api/v1/alarms`, { method: 'POST', body: 'x'.repeat(1 << 20) });
    assert.equal(big.status, 405);
    await big.arrayBuffer();
    const head = await fetch(`${c.api}/api/v1/executions?limit=1`, { method: 'HEAD' });
    assert.equal(head.status, 200);
    assert.equal(await head.text(), '');
    return all;
}

// ---------------------------------------------------------------------------------------------
// Chromium

function chromium(args) {
    const dir = tempDir('otelmon-chromium-');
    return execFileSync('/usr/bin/chromium', ['--headless', '--no-sandbox', '--disable-gpu',
        `--user-data-dir=${dir}`, '--no-first-run', '--disable-dev-shm-usage', ...args],
    { encoding: 'utf8', timeout: S(90000), maxBuffer: 64 << 20, stdio: ['ignore', 'pipe', 'pipe'] });
}

async function checkPage(c, ids, n) {
    const dir = tempDir('otelmon-shot-');
    const png = path.join(dir, 'page.png');
    chromium([`--screenshot=${png}`, '--window-size=1280,900', `${c.api}/`]);
    const bytes = readFileSync(png);
    assert.deepEqual([...bytes.subarray(0, 8)], [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a], 'a PNG');
    assert.ok(statSync(png).size > 10000, `a screenshot of a page, not a blank one (${statSync(png).size} bytes)`);
    assert.equal(bytes.readUInt32BE(16), 1280, 'its width');

    const dom = chromium(['--dump-dom', `${c.api}/`]);
    // The failed run is the first row of the runs table, its message escaped, its trace linked.
    const runs = dom.slice(dom.indexOf('<table id="runs">'));
    const firstRow = /<tr class="(\w+)">(.*?)<\/tr>/s.exec(runs);
    assert.ok(firstRow, 'a run row');
    assert.equal(firstRow[1], 'failed', 'failures first');
    const failedRows = [...runs.matchAll(/<tr class="failed">(.*?)<\/tr>/gs)].map((m) => m[1]);
    const cust = failedRows.find((r) => r.includes('load_customers'));
    assert.ok(cust, `the failed run in the DOM:\n${runs.slice(0, 2000)}`);
    assert.ok(cust.includes('ORA-00942: &lt;table&gt; &amp; "view" do not exist'), cust);
    const want = TEMPLATE.replace('{trace_id}', ids.load_customers.trace).replaceAll('&', '&amp;');
    const href = /<a class="trace" href="([^"]*)">([0-9a-f]{32})<\/a>/.exec(cust);
    assert.ok(href, cust);
    assert.equal(href[1], want.replaceAll('"', '&quot;'));
    assert.equal(href[2], ids.load_customers.trace);
    // The open alarms table lists it too.
    const alarmsTable = dom.slice(dom.indexOf('<table id="alarms">'), dom.indexOf('<table id="runs">'));
    assert.ok(alarmsTable.includes('load_customers'));
    // All failures come before every success.
    const classes = [...runs.matchAll(/<tr class="(\w+)">/g)].map((m) => m[1]);
    assert.equal(classes.length, n);
    assert.equal(classes.lastIndexOf('failed') < classes.indexOf('ok'), true, classes.join(' '));
}

// ---------------------------------------------------------------------------------------------

describe('alarmstore API over SQLite', { timeout: S(240000) }, () => {
    test('items, filters, pages, 400s; the page in Chromium', async () => {
        const dir = tempDir('otelmon-api-');
        const db = path.join(dir, 'alarms.db');
        const c = await startWithApi(collectorYaml(`sqlite:///${db}`));
        try {
            await c.check(async () => {
                const empty = await items(c, '/api/v1/executions');
                assert.deepEqual(empty, { items: [], next_cursor: null });
                const ids = await sendSpans(c, 25);
                await waitFor(async () => (await items(c, '/api/v1/executions?limit=1000')).items.length >= 27,
                    S(20000), '27 runs through the API');
                const all = await checkApi(c, ids);

                // Pages stay stable while runs arrive: new ones (higher ids) do not shift them.
                const before = all.items.map((r) => r.id);
                let sent = false;
                const paged = await allPages(c, '/api/v1/executions', 5, async (page) => {
                    if (page === 2 && !sent) {
                        sent = true;
                        await sendSpans(c, 6, 'x');
                        await waitFor(async () => (await items(c, '/api/v1/executions?group=bulk&limit=1000'))
                            .items.length >= 31, S(20000), 'the new runs');
                    }
                });
                assert.deepEqual(paged.items.map((r) => r.id), before, 'no duplicate, no gap');
                const now = await items(c, '/api/v1/executions?limit=1000');
                assert.equal(now.items.length, 33);

                // The page: 33 runs, failures first.
                const page = await get(c, '/');
                assert.equal(page.status, 200);
                assert.match(page.headers.get('content-type'), /^text\/html/);
                await checkPage(c, ids, 33);
            });
        } finally {
            await c.stop();
        }
    });
});

// ---------------------------------------------------------------------------------------------
// A bearer token and TLS

function httpsGet(port, p, ca, headers = {}) {
    return new Promise((resolve, reject) => {
        const req = https.get({ host: '127.0.0.1', port, path: p, ca, headers }, (res) => {
            let body = '';
            res.setEncoding('utf8');
            res.on('data', (d) => { body += d; });
            res.on('end', () => resolve({ status: res.statusCode, body }));
        });
        req.on('error', reject);
    });
}

describe('alarmstore API with a bearer token over TLS', { timeout: S(120000) }, () => {
    test('401 without the token, 200 with it; TLS only', async () => {
        const dir = tempDir('otelmon-api-');
        const pki = makePki(dir);
        const tls = pki.server;
        const db = path.join(dir, 'alarms.db');
        const top = 'extensions:\n  bearertokenauth:\n    token: "s3cret-token"\n';
        const apiExtra = `      tls: {cert_file: ${JSON.stringify(tls.cert)}, key_file: ${JSON.stringify(tls.key)}}\n` +
            '      auth: {authenticator: bearertokenauth}\n';
        const c = await startWithApi(collectorYaml(`sqlite:///${db}`, apiExtra, top));
        try {
            await c.check(async () => {
                const ca = readFileSync(pki.ca);
                const ids = await sendSpans(c, 0);
                const auth = { Authorization: 'Bearer s3cret-token' };
                await waitFor(async () => {
                    const r = await httpsGet(c.apiPort, '/api/v1/executions', ca, auth);
                    return r.status === 200 && JSON.parse(r.body).items.length >= 2;
                }, S(20000), 'two runs through the API over TLS');
                for (const p of ['/api/v1/executions', '/api/v1/alarms', '/', '/nope']) {
                    assert.equal((await httpsGet(c.apiPort, p, ca)).status, 401, `${p} without a token`);
                    const wrong = await httpsGet(c.apiPort, p, ca, { Authorization: 'Bearer nope' });
                    assert.equal(wrong.status, 401, `${p} with a wrong token`);
                }
                const r = await httpsGet(c.apiPort, '/api/v1/executions?status=FAILED', ca, auth);
                assert.equal(r.status, 200);
                assert.deepEqual(JSON.parse(r.body).items.map((x) => [x.process_name, x.trace_id]),
                    [['load_customers', ids.load_customers.trace]]);
                const page = await httpsGet(c.apiPort, '/', ca, auth);
                assert.equal(page.status, 200);
                assert.ok(page.body.includes(ids.load_customers.trace));
                // Plain HTTP is not served (answered 400 as Go's TLS server does, no data).
                const plain = await fetch(`http://127.0.0.1:${c.apiPort}/api/v1/executions`, { headers: auth });
                assert.equal(plain.status, 400);
                assert.ok(!(await plain.text()).includes('load_customers'));
            });
        } finally {
            await c.stop();
        }
    });

    test('a config without {trace_id} in the template, or an unknown api key, is refused', async () => {
        const { runOtelmon } = await import('../js/harness.mjs');
        const { writeFileSync } = await import('node:fs');
        const dir = tempDir('otelmon-api-');
        const cfg = path.join(dir, 'c.yaml');
        const base = collectorYaml(`sqlite:///${dir}/x.db`)({ grpcPort: 0, httpPort: 0 });
        writeFileSync(cfg, base.replace(JSON.stringify(TEMPLATE), '"http://grafana/explore"'));
        let r = runOtelmon(['validate', '--config', cfg]);
        assert.notEqual(r.code, 0);
        assert.match(r.stderr, /api::trace_url_template: must contain \{trace_id\}/);
        writeFileSync(cfg, base.replace('      endpoint:', '      bearer_token: x\n      endpoint:'));
        r = runOtelmon(['validate', '--config', cfg]);
        assert.notEqual(r.code, 0);
        assert.match(r.stderr, /bearer_token/);
        writeFileSync(cfg, base.replace('      endpoint:', '      auth: {authenticator: nosuch}\n      endpoint:'));
        r = runOtelmon(['validate', '--config', cfg]);
        assert.notEqual(r.code, 0);
        assert.match(r.stderr, /nosuch/);
    });
});

// ---------------------------------------------------------------------------------------------
// MariaDB (a real server: test/js/mariadb.mjs)

describe('alarmstore API over MariaDB', { timeout: S(240000) }, () => {
    test('the same items, filters and pages; 503 while the server is down', async () => {
        const m = await MariaDB.create();
        const url = `mysql://otelmon:s3cret%21pw@127.0.0.1:${m.port}/otelmon`;
        let c;
        try {
            c = await startWithApi(collectorYaml(url));
            await c.check(async () => {
                const ids = await sendSpans(c, 25);
                await waitFor(async () => {
                    const r = await get(c, '/api/v1/executions?limit=1000');
                    return r.status === 200 && r.body.items.length >= 27;
                }, S(30000), '27 runs through the API');
                await checkApi(c, ids);
                await checkPage(c, ids, 27);

                await m.stop();
                const down = await get(c, '/api/v1/executions');
                assert.equal(down.status, 503);
                assert.match(down.body.error, /the database is unavailable/);
                assert.equal((await get(c, '/')).status, 503);
                await m.start();
                await waitFor(async () => (await get(c, '/api/v1/executions')).status === 200,
                    S(30000), 'the API back with the server');
                assert.equal((await items(c, '/api/v1/executions?limit=1000')).items.length, 27);
            });
        } finally {
            await c?.stop();
            await m.stop();
        }
    });
});
