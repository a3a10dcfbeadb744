// prometheus.test.mjs: OtelMon's Prometheus exporters against a real Prometheus (Debian's
// prometheus 2.42, which the tests start and stop), fed by the OpenTelemetry JS SDK.
//
// Two services send a counter, an up-down counter, an observable gauge, a histogram with
// explicit buckets and an exponential histogram (a view), with units and attributes: service A
// in cumulative temporality, service B in delta. They go through OtelMon:
//   - `prometheusremotewrite` -> Prometheus' remote-write receiver: /api/v1/series and
//     /api/v1/query must give exactly the series and values written out below, derived from
//     the translation rules (names with unit and type suffixes, sanitised labels, job and
//     instance from the resource, target_info with the other resource attributes), not from
//     OtelMon's output. Delta metrics are dropped, and the collector says so at warn level.
//     Prometheus stopped for a few seconds while metrics flow loses no sample; an
//     out-of-order batch is answered 400 and dropped while later batches arrive;
//   - `prometheus` (pull), scraped every second by another Prometheus (honor_labels, as for
//     any federation endpoint): the same queries give the same answers, with what the pull
//     exporter adds (otel_scope_name / _version labels, as otelcol's; delta sums and
//     histograms accumulated; the exponential histogram as the text format's +Inf bucket,
//     sum and count); promtool check metrics finds nothing to complain about in a scrape;
//     metric_expiration makes a service that stopped sending go stale.
// And the seed project's collector config (../shared/seed/original-otelcol.yaml) passes
// `otelmon validate` unchanged.
//
// Prometheus runs on a free loopback port (test/js/prometheus.mjs); the collector binds port 0.

import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';

import { labelString, Prometheus } from '../js/prometheus.mjs';
import {
    requireJs, runOtelmon, sleep, startCollector, TIME_SCALE, waitFor,
} from '../js/harness.mjs';

const api = requireJs('@opentelemetry/api');
const { ExportResultCode } = requireJs('@opentelemetry/core');
const { resourceFromAttributes } = requireJs('@opentelemetry/resources');
const {
    AggregationTemporality, AggregationType, MeterProvider, MetricReader,
} = requireJs('@opentelemetry/sdk-metrics');
const { OTLPMetricExporter } = requireJs('@opentelemetry/exporter-metrics-otlp-proto');

// ---------------------------------------------------------------------------------------------
// The SDK side

class ManualReader extends MetricReader {
    async onShutdown() {}
    async onForceFlush() {}
}

const SERVICE_A = { 'service.name': 'etl-airflow', 'service.namespace': 'data', 'service.instance.id': 'airflow-1',
                    'host.name': 'worker-1', 'deployment.environment': 'test' };
const SERVICE_B = { 'service.name': 'nifi', 'service.instance.id': 'nifi-1', 'host.name': 'worker-2' };

/** One service's instruments, recording what the test asks for; collect() + export() send. */
class Service {
    constructor(attrs, temporality, url) {
        this.reader = new ManualReader({
            aggregationTemporalitySelector: () => temporality,
        });
        this.provider = new MeterProvider({
            resource: resourceFromAttributes(attrs),
            readers: [this.reader],
            views: [{ instrumentName: 'etl.batch.size', aggregation: { type: AggregationType.EXPONENTIAL_HISTOGRAM } }],
        });
        this.exporter = new OTLPMetricExporter({ url, timeoutMillis: 15000 });
        const meter = this.provider.getMeter('etl-meter', '1.2.0');
        this.records = meter.createCounter('etl.records.processed', { unit: '{record}', description: 'Records processed.' });
        this.queue = meter.createUpDownCounter('etl.queue.depth', { unit: '{item}', description: 'Items queued.' });
        this.memory = 0;
        this.worker = attrs === SERVICE_A ? 'w1' : 'w2';
        meter.createObservableGauge('etl.worker.memory', { unit: 'By', description: 'Worker memory.' })
            .addCallback((obs) => obs.observe(this.memory, { worker: this.worker }));
        this.duration = meter.createHistogram('etl.task.duration', {
            unit: 's', description: 'Task duration.', advice: { explicitBucketBoundaries: [0.1, 1, 10] } });
        this.batch = meter.createHistogram('etl.batch.size', { unit: 'By', description: 'Batch size.' });
        this.ticks = meter.createCounter('etl.ticks', { description: 'Ticks.' });
    }

    async send() {
        const { resourceMetrics, errors } = await this.reader.collect();
        assert.deepEqual(errors, []);
        await new Promise((resolve, reject) => {
            this.exporter.export(resourceMetrics, (res) => (res.code === ExportResultCode.SUCCESS ? resolve()
                : reject(new Error(`export failed: ${res.error}`))));
        });
    }

    async shutdown() {
        await this.exporter.shutdown();
        await this.provider.shutdown();
    }
}

/** The same recordings for both services: two exports, so that A's cumulative and B's
 * accumulated delta values are the sums of both. */
async function recordAndSend(svc) {
    const attrs = { pipeline: 'orders', 'etl.shard': 3 };
    svc.records.add(5, attrs);
    svc.queue.add(10, { queue: 'q1' });
    svc.memory = 1048576;
    svc.duration.record(0.05, { task: 'load' });
    svc.duration.record(0.5, { task: 'load' });
    svc.batch.record(100);
    svc.batch.record(2000);
    await svc.send();
    svc.records.add(7, attrs);
    svc.queue.add(-3, { queue: 'q1' });
    svc.memory = 2097152;
    svc.duration.record(5, { task: 'load' });
    svc.duration.record(50, { task: 'load' });
    svc.batch.record(30000);
    await svc.send();
}

// ---------------------------------------------------------------------------------------------
// Expectations, from the translation rules

const A = 'instance="airflow-1",job="data/etl-airflow"';
const B = 'instance="nifi-1",job="nifi"';
const SHARD = 'etl_shard="3"';

/** What service A (cumulative) becomes in Prometheus: series -> value. */
const EXPECT_A = {
    [`etl_records_processed_total{${SHARD},${A},pipeline="orders"}`]: 12,
    [`etl_queue_depth{${A},queue="q1"}`]: 7,
    [`etl_worker_memory_bytes{${A},worker="w1"}`]: 2097152,
    [`etl_task_duration_seconds_bucket{${A},le="0.1",task="load"}`]: 1,
    [`etl_task_duration_seconds_bucket{${A},le="1",task="load"}`]: 2,
    [`etl_task_duration_seconds_bucket{${A},le="10",task="load"}`]: 3,
    [`etl_task_duration_seconds_bucket{${A},le="+Inf",task="load"}`]: 4,
    [`etl_task_duration_seconds_sum{${A},task="load"}`]: 55.55,
    [`etl_task_duration_seconds_count{${A},task="load"}`]: 4,
    [`etl_batch_size_bytes{${A}}`]: 'native: count 3, sum 32100',
    [`target_info{deployment_environment="test",host_name="worker-1",${A}}`]: 1,
};
/** Service B (delta) over remote-write: only its gauge and target_info (delta is dropped). */
const EXPECT_B_RW = {
    [`etl_worker_memory_bytes{${B},worker="w2"}`]: 2097152,
    [`target_info{host_name="worker-2",${B}}`]: 1,
};

async function checkValues(prom, expected) {
    for (const [series, want] of Object.entries(expected)) {
        if (typeof want === 'string') {
            const [count] = await prom.query(`histogram_count(${series})`);
            const [sum] = await prom.query(`histogram_sum(${series})`);
            assert.equal(`native: count ${count?.value}, sum ${sum?.value}`, want, series);
            continue;
        }
        const r = await prom.query(series);
        assert.equal(r.length, 1, `${series}: ${JSON.stringify(r)}`);
        assert.ok(Math.abs(r[0].value - want) < 1e-9, `${series} = ${r[0].value}, expected ${want}`);
    }
}

/** The collector: otlp -> batch -> the exporters given (YAML of the exporters section). */
function collectorYaml(exportersYaml, exporterIds) {
    return () => 'receivers:\n  otlp:\n    protocols:\n      grpc:\n        endpoint: 127.0.0.1:0\n' +
        '      http:\n        endpoint: 127.0.0.1:0\n' +
        'processors:\n  batch:\n    timeout: 100ms\n' +
        `exporters:\n${exportersYaml}` +
        'service:\n  pipelines:\n    metrics:\n      receivers: [otlp]\n      processors: [batch]\n' +
        `      exporters: [${exporterIds.join(', ')}]\n`;
}

function post(url, body, type = 'application/json') {
    return fetch(url, { method: 'POST', headers: { 'content-type': type }, body });
}

/** An OTLP/JSON gauge point of `name` at time ms (for timestamps the SDK does not let us pick). */
function gaugeJson(name, value, ms) {
    return JSON.stringify({
        resourceMetrics: [{
            resource: { attributes: [{ key: 'service.name', value: { stringValue: 'ooo' } }] },
            scopeMetrics: [{ metrics: [{ name, gauge: { dataPoints: [{ asDouble: value, timeUnixNano: `${ms}000000` }] } }] }],
        }],
    });
}

// ---------------------------------------------------------------------------------------------

describe('prometheusremotewrite -> Prometheus', () => {
    const prom = new Prometheus();
    let c;

    before(async () => {
        await prom.start();
        c = await startCollector({
            yaml: collectorYaml(
                '  prometheusremotewrite:\n' +
                `    endpoint: ${prom.url}/api/v1/write\n` +
                '    tls:\n      insecure: true\n' +
                '    retry_on_failure:\n      initial_interval: 50ms\n      max_interval: 500ms\n',
                ['prometheusremotewrite']),
        });
    });

    after(async () => {
        await c?.stop();
        await prom.stop();
    });

    it('names, labels and values of both services as the rules give them', () => c.check(async () => {
        const a = new Service(SERVICE_A, AggregationTemporality.CUMULATIVE, `${c.httpUrl}/v1/metrics`);
        const b = new Service(SERVICE_B, AggregationTemporality.DELTA, `${c.httpUrl}/v1/metrics`);
        await recordAndSend(a);
        await recordAndSend(b);
        await Promise.all([a.shutdown(), b.shutdown()]);
        const want = [...Object.keys(EXPECT_A), ...Object.keys(EXPECT_B_RW)].sort();
        let got;
        await waitFor(async () => {
            got = await prom.series('{job=~"data/etl-airflow|nifi"}');
            return got.length >= want.length && (await prom.query('etl_records_processed_total')).length > 0 &&
                (await prom.query('etl_records_processed_total'))[0].value === 12;
        }, 15000 * TIME_SCALE, 'the series in Prometheus').catch(() => {});
        assert.deepEqual(got, want);
        await checkValues(prom, EXPECT_A);
        await checkValues(prom, EXPECT_B_RW);
        // Delta points were dropped, and the collector said so (at most once a minute).
        await waitFor(() => /warn.*dropped \d+ data points of delta metrics/.test(c.stderr), 5000, 'the delta warning');
        assert.equal(c.stderr.match(/data points of delta metrics/g).length, 1);
    }));

    it('Prometheus down for a few seconds: no sample lost', () => c.check(async () => {
        const svc = new Service({ 'service.name': 'ticker' }, AggregationTemporality.CUMULATIVE, `${c.httpUrl}/v1/metrics`);
        const sent = [];
        let total = 0;
        const tick = async () => {
            total += 1;
            svc.ticks.add(1);
            await svc.send();
            sent.push(total);
            await sleep(150);
        };
        for (let i = 0; i < 5; i++) {
            await tick();
        }
        await prom.stop();
        for (let i = 0; i < 20; i++) { // about 3 s without Prometheus
            await tick();
        }
        await prom.start({ keepPort: true });
        for (let i = 0; i < 5; i++) {
            await tick();
        }
        await svc.shutdown();
        // Every cumulative value the SDK exported is a sample: 1, 2, ..., total.
        let values = [];
        await waitFor(async () => {
            const data = await prom.apiGet(`/api/v1/query?query=${encodeURIComponent('etl_ticks_total{job="ticker"}[10m]')}`);
            values = (data.result[0]?.values ?? []).map((v) => Number(v[1]));
            return values.length >= total;
        }, 30000 * TIME_SCALE, 'every tick in Prometheus').catch(() => {});
        assert.deepEqual(values, sent);
    }));

    it('an out-of-order batch is answered 400 and dropped; later batches arrive', () => c.check(async () => {
        const now = Date.now();
        const url = `${c.httpUrl}/v1/metrics`;
        assert.equal((await post(url, gaugeJson('ooo.gauge', 1, now))).status, 200);
        await waitFor(async () => (await prom.query('ooo_gauge')).length === 1, 10000 * TIME_SCALE, 'the first sample');
        assert.equal((await post(url, gaugeJson('ooo.gauge', 2, now - 60000))).status, 200);
        await waitFor(() => /dropping a remote-write request.*400.*out of (order|bounds)/.test(c.stderr), 10000 * TIME_SCALE,
                      'the 400 in the collector\'s log');
        assert.equal((await post(url, gaugeJson('ooo.gauge', 3, now + 1000))).status, 200);
        await waitFor(async () => (await prom.query('ooo_gauge'))[0]?.value === 3, 10000 * TIME_SCALE, 'the later sample');
        const data = await prom.apiGet(`/api/v1/query?query=${encodeURIComponent('ooo_gauge[10m]')}`);
        assert.deepEqual(data.result[0].values.map((v) => Number(v[1])), [1, 3]);
    }));
});

// ---------------------------------------------------------------------------------------------
// The pull exporter

const SC = 'otel_scope_name="etl-meter",otel_scope_version="1.2.0"';

/** What Prometheus scrapes from the pull exporter: service A as over remote-write plus the
 * scope labels (the exponential histogram as a classic one with only the +Inf bucket); service
 * B's deltas accumulated into the same cumulative values (its up-down counter has no
 * cumulative form and is dropped). target_info carries no scope labels. */
function expectPull(who, inst, extraTarget) {
    const L = `${inst},${SC}`;
    const le = (b) => `${inst},le="${b}",${SC}`; /* labels in name order, as the API lists them */
    return {
        [`etl_records_processed_total{${SHARD},${L},pipeline="orders"}`]: 12,
        ...(who === 'A' ? { [`etl_queue_depth{${L},queue="q1"}`]: 7 } : {}),
        [`etl_worker_memory_bytes{${L},worker="${who === 'A' ? 'w1' : 'w2'}"}`]: 2097152,
        [`etl_task_duration_seconds_bucket{${le('0.1')},task="load"}`]: 1,
        [`etl_task_duration_seconds_bucket{${le('1')},task="load"}`]: 2,
        [`etl_task_duration_seconds_bucket{${le('10')},task="load"}`]: 3,
        [`etl_task_duration_seconds_bucket{${le('+Inf')},task="load"}`]: 4,
        [`etl_task_duration_seconds_sum{${L},task="load"}`]: 55.55,
        [`etl_task_duration_seconds_count{${L},task="load"}`]: 4,
        [`etl_batch_size_bytes_bucket{${le('+Inf')}}`]: 3,
        [`etl_batch_size_bytes_sum{${L}}`]: 32100,
        [`etl_batch_size_bytes_count{${L}}`]: 3,
        [`target_info{${extraTarget}${inst}}`]: 1,
    };
}

describe('prometheus (pull) scraped by Prometheus', () => {
    let prom;
    let c;
    let port;

    before(async () => {
        c = await startCollector({
            yaml: collectorYaml('  prometheus:\n    endpoint: 127.0.0.1:0\n    metric_expiration: 5s\n',
                                ['prometheus']),
        });
        await waitFor(() => (port = c.listeningPort(/Prometheus metrics endpoint listening on \S*:(\d+)/)),
                      5000, 'the pull exporter\'s port');
        prom = new Prometheus('scrape_configs:\n  - job_name: otelmon\n    honor_labels: true\n' +
                              `    static_configs:\n      - targets: ['127.0.0.1:${port}']\n`);
        await prom.start();
        // Prometheus applies new targets a few seconds after it starts: wait for its first
        // scrape, so that what the tests send is scraped well within metric_expiration.
        await waitFor(async () => (await prom.query('up{job="otelmon"}'))[0]?.value === 1,
                      20000 * TIME_SCALE, 'the first scrape');
    });

    after(async () => {
        await c?.stop();
        await prom?.stop();
    });

    it('the same queries give the same answers; promtool finds nothing to complain about', () => c.check(async () => {
        const a = new Service(SERVICE_A, AggregationTemporality.CUMULATIVE, `${c.httpUrl}/v1/metrics`);
        const b = new Service(SERVICE_B, AggregationTemporality.DELTA, `${c.httpUrl}/v1/metrics`);
        await recordAndSend(a);
        await recordAndSend(b);
        const expected = { ...expectPull('A', A, 'deployment_environment="test",host_name="worker-1",'),
                           ...expectPull('B', B, 'host_name="worker-2",') };
        const want = Object.keys(expected).sort();
        let got = [];
        await waitFor(async () => {
            got = await prom.series('{job=~"data/etl-airflow|nifi"}');
            return got.length >= want.length;
        }, 15000 * TIME_SCALE, 'the scraped series').catch(() => {});
        const targets = (await prom.apiGet('/api/v1/targets')).activeTargets
            .map((t) => `${t.scrapeUrl}: ${t.health} ${t.lastError}`).join('\n');
        assert.deepEqual(got, want, `targets:\n${targets}`);
        await checkValues(prom, expected);
        // A scrape of the exporter, as promtool lints it.
        const res = await fetch(`http://127.0.0.1:${port}/metrics`);
        assert.equal(res.headers.get('content-type'), 'text/plain; version=0.0.4; charset=utf-8');
        const text = await res.text();
        const lint = spawnSync('promtool', ['check', 'metrics'], { input: text, encoding: 'utf8' });
        assert.equal(`${lint.stdout}${lint.stderr}`, '', `promtool on:\n${text}`);
        assert.equal(lint.status, 0);
        await Promise.all([a.shutdown(), b.shutdown()]);
    }));

    it('a service that stops sending goes stale after metric_expiration', () => c.check(async () => {
        // A keeps sending; B (from the previous test) sent nothing since: after 5 s its series
        // leave the scrape, and Prometheus marks them stale.
        const a = new Service(SERVICE_A, AggregationTemporality.CUMULATIVE, `${c.httpUrl}/v1/metrics`);
        let bGone = false;
        const deadline = Date.now() + 20000 * TIME_SCALE;
        while (!bGone && Date.now() < deadline) {
            a.records.add(1, { pipeline: 'orders', 'etl.shard': 3 });
            await a.send();
            await sleep(500);
            bGone = (await prom.query('{job="nifi"}')).length === 0;
        }
        assert.ok(bGone, 'nifi\'s series are still there');
        assert.ok((await prom.query('etl_records_processed_total{job="data/etl-airflow"}')).length === 1,
                  'the live service is still scraped');
        await a.shutdown();
    }));
});

describe('the seed project\'s collector config', () => {
    it('passes otelmon validate unchanged', () => {
        // ../shared relative to the repository root; a git worktree sits one level deeper
        // (the shared directory is next to the main checkout), so its parent is tried too.
        const root = path.resolve(path.dirname(new URL(import.meta.url).pathname), '..', '..');
        const candidates = [path.join(root, '..', 'shared', 'seed', 'original-otelcol.yaml'),
                            path.join(root, '..', '..', 'shared', 'seed', 'original-otelcol.yaml')];
        const seed = candidates.find((p) => existsSync(p));
        assert.ok(seed, `the seed config is missing: looked for ${candidates.join(' and ')}`);
        const r = runOtelmon(['validate', '--config', seed]);
        assert.equal(r.code, 0, `otelmon validate ${seed}:\n${r.stderr}${r.stdout}`);
    });
});
