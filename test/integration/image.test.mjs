// image.test.mjs: the container image's root filesystem, run as the image runs it. There is
// no container engine here, so the test builds the root filesystem with deploy/make-rootfs
// (what deploy/Dockerfile runs in its build stage) and starts the collector inside it with
// chroot as uid 10001 (the image's USER), on the image's default config unchanged: it must
// start, take OTLP from the JS SDK over gRPC and HTTP, answer health_check (probed with the
// `otelmon healthcheck` subcommand from inside the image, as a compose health check does),
// and stop cleanly on SIGTERM. The image's size is held to issue 13's targets.
//
// Needs root (chroot, and mounting /proc in the root filesystem as a container runtime does:
// sanitizer builds read it at start). The default config listens on 0.0.0.0:4317, :4318 and
// :13133 and the collector's own metrics on :8888: those ports must be free on this machine
// while the test runs.
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { copyFileSync, mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { before, test } from 'node:test';
import { fileURLToPath } from 'node:url';

import { otelmonBin, requireJs, tempDir, TIME_SCALE, waitFor } from '../js/harness.mjs';

const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const S = (ms) => ms * TIME_SCALE;

const api = requireJs('@opentelemetry/api');
const { resourceFromAttributes } = requireJs('@opentelemetry/resources');
const { BasicTracerProvider, SimpleSpanProcessor } = requireJs('@opentelemetry/sdk-trace-base');

for (const k of Object.keys(process.env)) {
    if (k.startsWith('OTEL_')) {
        delete process.env[k];
    }
}

let rootfs;
let procMounted = false;

// A build with sanitizers (the ASan and TSan runs of the tests) brings their runtimes along,
// which the size targets are not about.
const instrumented = () => /libasan|libtsan|libubsan/.test(spawnSync('ldd', [otelmonBin()], { encoding: 'utf8' }).stdout);

before(() => {
    assert.equal(process.getuid(), 0, 'the image test needs root (chroot); run the tests as root');
    // Registered before tempDir's own exit handler, so /proc is unmounted before the
    // directory is removed.
    process.once('exit', () => {
        if (procMounted) {
            spawnSync('umount', ['-l', path.join(rootfs, 'proc')]);
        }
    });
    rootfs = path.join(tempDir('otelmon-image-'), 'rootfs');
    const r = spawnSync(path.join(REPO, 'deploy', 'make-rootfs'),
                        [rootfs, path.dirname(otelmonBin())], { cwd: REPO, encoding: 'utf8' });
    assert.equal(r.status, 0, `deploy/make-rootfs failed:\n${r.stderr}`);
    // A ThreadSanitizer build reads its suppressions file at start, from inside the image:
    // put it at the same path there (as a container would mount it).
    const supp = /(?:^|:)suppressions=([^:]+)/.exec(process.env.TSAN_OPTIONS ?? '')?.[1];
    if (supp) {
        mkdirSync(path.join(rootfs, path.dirname(supp)), { recursive: true });
        copyFileSync(supp, path.join(rootfs, supp));
    }
    const m = spawnSync('mount', ['-t', 'proc', 'proc', path.join(rootfs, 'proc')], { encoding: 'utf8' });
    assert.equal(m.status, 0, `mount proc: ${m.stderr}`);
    procMounted = true;
});

/** Run a command inside the root filesystem as the image's user. */
function inImage(args, opts = {}) {
    return ['chroot', ['--userspec=10001:10001', rootfs, ...args], opts];
}

test('the root filesystem holds the three names of one binary, its config and nothing more than the targets allow', () => {
    const ino = (p) => statSync(path.join(rootfs, p)).ino;
    assert.equal(ino('otelcol'), ino('otelmon'));
    assert.equal(ino('otelcol-contrib'), ino('otelmon'));
    const cfg = readFileSync(path.join(rootfs, 'etc/otelcol-contrib/config.yaml'), 'utf8');
    assert.equal(readFileSync(path.join(rootfs, 'etc/otelcol/config.yaml'), 'utf8'), cfg);
    assert.match(cfg, /endpoint: 0\.0\.0\.0:4317/);
    assert.match(cfg, /health_check:\n\s+endpoint: 0\.0\.0\.0:13133/);
    statSync(path.join(rootfs, 'etc/ssl/certs/ca-certificates.crt'));
    statSync(path.join(rootfs, 'usr/share/zoneinfo/UTC'));
    // The validate command works in the image on its own config.
    const v = spawnSync(...inImage(['/otelcol-contrib', 'validate', '--config', '/etc/otelcol-contrib/config.yaml'],
                                   { encoding: 'utf8' }));
    assert.equal(v.status, 0, v.stderr);
    // The libraries loaded on first use (ldd cannot see them) are in the image: validating
    // an alarm store config loads its database's client library.
    for (const database of ['sqlite:////var/lib/otelmon/runs.db', 'mysql://otelmon@db/otelmon']) {
        writeFileSync(path.join(rootfs, 'tmp/lazy.yaml'),
                      `receivers: {otlp: {protocols: {grpc: {endpoint: 127.0.0.1:4317}}}}\n` +
                      `exporters: {alarmstore: {database: "${database}"}}\n` +
                      `service: {pipelines: {traces: {receivers: [otlp], exporters: [alarmstore]}}}\n`);
        const a = spawnSync(...inImage(['/otelmon', 'validate', '--config', '/tmp/lazy.yaml'], { encoding: 'utf8' }));
        assert.equal(a.status, 0, `${database}: ${a.stderr}`);
    }
    // Issue 13's targets: under 30 MB on disk, under 12 MB compressed (of a build without
    // sanitizers: the tests also run on ASan and TSan builds).
    if (instrumented()) {
        return;
    }
    const du = spawnSync('du', ['-sb', '--exclude=proc', rootfs], { encoding: 'utf8' });
    const bytes = Number(du.stdout.split('\t')[0]);
    assert.ok(bytes > 0 && bytes < 30 * 1000 * 1000, `${bytes} bytes on disk`);
    const gz = spawnSync('sh', ['-c', 'tar -C "$0" --exclude=./proc -cf - . | gzip -9 | wc -c', rootfs],
                         { encoding: 'utf8' });
    const packed = Number(gz.stdout.trim());
    assert.ok(packed > 0 && packed < 12 * 1000 * 1000, `${packed} bytes compressed`);
});

test('in the image as uid 10001, the default config takes OTLP over gRPC and HTTP, answers health_check and stops on SIGTERM',
     { timeout: S(60000) }, async (t) => {
         const proc = spawn(...inImage(['/otelcol-contrib', '--config', '/etc/otelcol-contrib/config.yaml'],
                                       { stdio: ['ignore', 'pipe', 'pipe'] }));
         let stderr = '';
         let exit = null;
         proc.stderr.setEncoding('utf8');
         proc.stderr.on('data', (d) => { stderr += d; });
         // 'close', not 'exit': the last lines on stderr may still be in the pipe when the process exits.
         const exited = new Promise((resolve) => proc.once('close', (code, signal) => { exit = { code, signal }; resolve(exit); }));
         t.after(() => { if (!exit) proc.kill('SIGKILL'); });
         const describe = () => `--- collector stderr:\n${stderr}`;
         await waitFor(() => {
             assert.equal(exit, null, `the collector exited: ${JSON.stringify(exit)}\n${describe()}`);
             return /everything is ready/.test(stderr);
         }, S(15000), 'the collector to start in the image');
         // It runs as the image's user (chroot execs the collector in its own process).
         const uid = readFileSync(`/proc/${proc.pid}/status`, 'utf8').match(/^Uid:\s+(\d+)/m)[1];
         assert.equal(uid, '10001');

         const { OTLPTraceExporter: GrpcExporter } = requireJs('@opentelemetry/exporter-trace-otlp-grpc');
         const { OTLPTraceExporter: HttpExporter } = requireJs('@opentelemetry/exporter-trace-otlp-proto');
         const exporters = [new GrpcExporter({ url: 'http://127.0.0.1:4317' }),
                            new HttpExporter({ url: 'http://127.0.0.1:4318/v1/traces' })];
         for (const [i, exporter] of exporters.entries()) {
             const provider = new BasicTracerProvider({
                 resource: resourceFromAttributes({ 'service.name': 'image-test' }),
                 spanProcessors: [new SimpleSpanProcessor(exporter)],
             });
             const tracer = provider.getTracer('image');
             for (let k = 0; k < 3; k++) {
                 tracer.startSpan(`span-${i}-${k}`, { kind: api.SpanKind.SERVER }).end();
             }
             await provider.forceFlush();
             await provider.shutdown();
         }
         // The default config's debug exporter logs one line per batch with its span count.
         await waitFor(() => [...stderr.matchAll(/"spans": (\d+)/g)].reduce((s, m) => s + Number(m[1]), 0) >= 6,
                       S(15000), `6 spans in the debug exporter's lines\n${describe()}`);

         // The collector's own metrics on :8888, counting what the SDK sent.
         const scrape = await (await fetch('http://127.0.0.1:8888/metrics')).text();
         const accepted = [...scrape.matchAll(/^otelcol_receiver_accepted_spans_total\{[^}]*\} (\d+)$/gm)]
             .reduce((s, m) => s + Number(m[1]), 0);
         assert.equal(accepted, 6, scrape);

         const hc = spawnSync(...inImage(['/otelmon', 'healthcheck', '--url', 'http://127.0.0.1:13133/'],
                                         { encoding: 'utf8' }));
         assert.equal(hc.status, 0, `healthcheck: ${hc.stderr}`);
         const down = spawnSync(...inImage(['/otelmon', 'healthcheck', '--url', 'http://127.0.0.1:1/',
                                            '--timeout', '2s'], { encoding: 'utf8' }));
         assert.equal(down.status, 1, 'healthcheck of a closed port fails');
         assert.match(down.stderr, /cannot connect/);

         proc.kill('SIGTERM');
         const res = await Promise.race([exited, new Promise((r) => setTimeout(r, S(15000), null))]);
         assert.ok(res !== null, `no exit within 15 s of SIGTERM\n${describe()}`);
         assert.equal(res.code, 0, describe());
         assert.match(stderr, /shutdown complete/);
     });

