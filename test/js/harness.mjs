// harness.mjs: shared helpers of the integration tests in test/integration/.
//
// They run the real collector binary (OTELMON_BIN) as a child process with a config written to
// a temporary directory: the otlp receiver (gRPC and HTTP on 127.0.0.1, port 0: the collector
// binds free ports itself and the harness reads them from its log) feeds a
// batch processor, which feeds a `file` exporter whose output (one OTLP JSON request per line)
// the tests read back after a graceful SIGTERM shutdown.
//
// Packages come from test/js/node_modules (npm ci --prefix test/js), resolved with a require()
// rooted here so that the tests do not depend on NODE_PATH or on the working directory.

import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import net from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const JS_DIR = path.dirname(fileURLToPath(import.meta.url));
const NODE_MODULES = path.join(JS_DIR, 'node_modules');

// A missing install must fail every test loudly, never turn into skipped tests.
if (!existsSync(path.join(NODE_MODULES, '@opentelemetry', 'sdk-trace-base')) ||
    !existsSync(path.join(NODE_MODULES, '@grpc', 'grpc-js'))) {
    throw new Error(
        `${NODE_MODULES} is missing or incomplete: the integration tests need the OpenTelemetry ` +
        'JS SDK. Run `npm ci --prefix test/js` in the repository root first.');
}

/** require() for packages installed in test/js/node_modules. */
export const requireJs = createRequire(path.join(JS_DIR, 'package.json'));

/** The collector binary under test; fails the test run when OTELMON_BIN is unset or wrong. */
export function otelmonBin() {
    const bin = process.env.OTELMON_BIN;
    if (!bin) {
        throw new Error('OTELMON_BIN is not set: run the integration tests through ' +
                        '`meson test --suite integration`, or set OTELMON_BIN=path/to/otelmon');
    }
    if (!existsSync(bin)) {
        throw new Error(`OTELMON_BIN=${bin} does not exist: build it first (ninja -C BUILDDIR)`);
    }
    return bin;
}

/** Slower runs (valgrind) stretch every wait by OTELMON_TIME_SCALE. */
export const TIME_SCALE = Number(process.env.OTELMON_TIME_SCALE ?? 1) || 1;

/** A promise resolved after ms milliseconds. */
export const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/** The first port of the kernel's ephemeral range (source ports of outgoing connections). */
function ephemeralLow() {
    try {
        const lo = Number(readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').split(/\s+/)[0]);
        return lo > 12000 ? lo : 32768;
    } catch {
        return 32768;
    }
}

/** Free loopback TCP ports, each checked by listening on it and then closed. Only for a port that
 * must be known before anything listens on it (a backend started after the collector that
 * sends to it, a port where nothing listens): between the check and the bind another process
 * could take it. Whatever the collector itself listens on is bound to port 0 instead and read
 * from its log (Collector.listeningPort). They are picked
 * below the ephemeral range: a port from it (what port 0 gives) can be taken as the source
 * port of some outgoing connection before the collector binds it. All are held open together
 * so that the same port is not handed out twice. */
export async function freePorts(n) {
    const servers = [];
    const lo = ephemeralLow();
    try {
        for (let tries = 0; servers.length < n && tries < 500; tries++) {
            const port = 10000 + Math.floor(Math.random() * (lo - 11000));
            const srv = net.createServer();
            const ok = await new Promise((resolve) => {
                srv.once('error', () => resolve(false));
                srv.listen(port, '127.0.0.1', () => resolve(true));
            });
            if (ok) {
                servers.push(srv);
            }
        }
        if (servers.length < n) {
            throw new Error(`could not find ${n} free loopback ports`);
        }
        return servers.map((s) => s.address().port);
    } finally {
        await Promise.all(servers.map((s) => new Promise((resolve) => s.close(resolve))));
    }
}

/** A new temporary directory, removed at process exit unless OTELMON_KEEP_TMP is set. */
export function tempDir(prefix = 'otelmon-it-') {
    const dir = mkdtempSync(path.join(tmpdir(), prefix));
    if (!process.env.OTELMON_KEEP_TMP) {
        process.once('exit', () => rmSync(dir, { recursive: true, force: true }));
    }
    return dir;
}

function tryConnect(port, host) {
    return new Promise((resolve) => {
        const sock = net.connect({ port, host });
        const done = (ok) => {
            sock.destroy();
            resolve(ok);
        };
        sock.once('connect', () => done(true));
        sock.once('error', () => done(false));
        sock.setTimeout(1000, () => done(false));
    });
}

/** The YAML of a collector config: otlp (grpc + http) -> batch -> file, for all signals. */
export function collectorConfigYaml(opts) {
    const grpcExtra = Object.entries(opts.grpc ?? {}).map(([k, v]) => `        ${k}: ${v}\n`);
    const httpExtra = Object.entries(opts.http ?? {}).map(([k, v]) => `        ${k}: ${v}\n`);
    const batchExtra = Object.entries(opts.batch ?? {}).map(([k, v]) => `    ${k}: ${v}\n`);
    const pipeline = '      receivers: [otlp]\n      processors: [batch]\n      exporters: [file]\n';
    return 'receivers:\n' +
        '  otlp:\n' +
        '    protocols:\n' +
        '      grpc:\n' +
        `        endpoint: 127.0.0.1:${opts.grpcPort}\n` + grpcExtra.join('') +
        '      http:\n' +
        `        endpoint: 127.0.0.1:${opts.httpPort}\n` + httpExtra.join('') +
        'processors:\n' +
        '  batch:\n' +
        `    timeout: ${opts.batchTimeout ?? '50ms'}\n` + batchExtra.join('') +
        'exporters:\n' +
        '  file:\n' +
        `    path: ${JSON.stringify(opts.outPath)}\n` +
        'service:\n' +
        '  pipelines:\n' +
        '    traces:\n' + pipeline +
        '    metrics:\n' + pipeline +
        '    logs:\n' + pipeline;
}

/** The last lines of a log, so that failure messages stay readable. */
function tail(text, lines = 60) {
    const all = text.split('\n');
    if (all.length <= lines + 1) {
        return text;
    }
    return `[... ${all.length - 1 - lines} earlier lines]\n${all.slice(-lines - 1).join('\n')}`;
}

/** A running collector. */
export class Collector {
    constructor(proc, opts) {
        this.proc = proc;
        this.dir = opts.dir;
        this.configPath = opts.configPath;
        this.outPath = opts.outPath;
        // 0 until the collector's log says where it listens (see scanPorts).
        this.grpcPort = opts.grpcPort || 0;
        this.httpPort = opts.httpPort || 0;
        this.stdout = '';
        this.stderr = '';
        this.exit = null; // {code, signal} once the process has exited
        proc.stdout.setEncoding('utf8');
        proc.stderr.setEncoding('utf8');
        proc.stdout.on('data', (d) => { this.stdout += d; });
        proc.stderr.on('data', (d) => {
            this.stderr += d;
            this.scanPorts();
        });
        this.exited = new Promise((resolve) => {
            proc.once('exit', (code, signal) => {
                this.exit = { code, signal };
                resolve(this.exit);
            });
        });
        // Never leave a collector behind when the test process ends.
        this.killAtExit = () => this.kill();
        process.once('exit', this.killAtExit);
    }

    get grpcAddress() { return `127.0.0.1:${this.grpcPort}`; }
    get httpUrl() { return `http://127.0.0.1:${this.httpPort}`; }

    /** What the collector printed so far, for failure messages. */
    describe() {
        const exit = this.exit ? `exit code ${this.exit.code}, signal ${this.exit.signal}`
                               : 'still running';
        return `--- collector (${exit}), config ${this.configPath}\n` +
            `--- stderr:\n${tail(this.stderr)}--- stdout:\n${tail(this.stdout)}---`;
    }

    /** The port of the first log line matching re (whose group 1 is the port), or 0. */
    listeningPort(re) {
        const m = re.exec(this.stderr);
        return m ? Number(m[1]) : 0;
    }

    /** The otlp receiver's ports as its first "listening on" lines give them. */
    scanPorts() {
        this.grpcPort ||= this.listeningPort(/OTLP\/gRPC listening on \S*:(\d+)/);
        this.httpPort ||= this.listeningPort(/OTLP\/HTTP listening on \S*:(\d+)/);
        this.telemetryPort ||= this.listeningPort(/Serving the collector's own metrics on \S*:(\d+)/);
    }

    /** Wait (bounded) until the collector says it is running and where its OTLP ports are;
     * fails early if the process exits. */
    async waitReady(timeoutMs = 10000 * TIME_SCALE) {
        try {
            await waitFor(() => {
                if (this.exit) {
                    throw new Error('collector exited before it was ready');
                }
                return this.grpcPort && this.httpPort && /everything is ready/.test(this.stderr);
            }, timeoutMs, 'the collector\'s ports and "everything is ready" in its log');
        } catch (e) {
            e.message += `\n${this.describe()}`;
            throw e;
        }
        // A listener bound from the log line accepts at once; check it once all the same.
        const ok = await Promise.all([tryConnect(this.grpcPort, '127.0.0.1'),
                                      tryConnect(this.httpPort, '127.0.0.1')]);
        if (!ok[0] || !ok[1]) {
            throw new Error(`collector ports ${this.grpcPort}/${this.httpPort} do not accept ` +
                            `connections\n${this.describe()}`);
        }
    }

    /** Send SIGTERM and wait (bounded) for the exit. Returns {code, signal, ms}. */
    async terminate(timeoutMs = 10000 * TIME_SCALE) {
        const t0 = Date.now();
        if (!this.exit) {
            this.proc.kill('SIGTERM');
        }
        let timer;
        const timeout = new Promise((resolve) => { timer = setTimeout(resolve, timeoutMs, null); });
        const res = await Promise.race([this.exited, timeout]);
        clearTimeout(timer);
        if (res === null) {
            this.kill();
            throw new Error(`collector did not exit within ${timeoutMs} ms of SIGTERM\n` +
                            this.describe());
        }
        process.removeListener('exit', this.killAtExit);
        return { ...res, ms: Date.now() - t0 };
    }

    /** SIGTERM, then require exit code 0 within the bound. */
    async stop(timeoutMs = 10000 * TIME_SCALE) {
        const res = await this.terminate(timeoutMs);
        if (res.code !== 0) {
            throw new Error(`collector exited with code ${res.code} (signal ${res.signal}) ` +
                            `after SIGTERM, expected 0\n${this.describe()}`);
        }
        return res;
    }

    /** SIGKILL; for cleanup after a failure. */
    kill() {
        if (!this.exit) {
            try {
                this.proc.kill('SIGKILL');
            } catch {
                // Already gone.
            }
        }
    }

    /** The file exporter's output so far (see readFileOutput). */
    output() { return readFileOutput(this.outPath); }

    /** Run fn; if it throws, add the collector's output to the error message. */
    async check(fn) {
        try {
            return await fn();
        } catch (e) {
            // A request that failed because the collector crashed: let the exit (and its
            // signal) show up in the report.
            if (!this.exit) {
                await Promise.race([this.exited, sleep(500)]);
            }
            if (e && typeof e === 'object' && !e.collectorLogged) {
                e.collectorLogged = true;
                const old = e.message;
                e.message = `${old}\n${this.describe()}`;
                // Reporters print the stack, which holds the message as it was at construction.
                if (typeof e.stack === 'string' && e.stack.includes(old)) {
                    e.stack = e.stack.replace(old, e.message);
                }
            }
            throw e;
        }
    }
}

/**
 * Start a collector: otlp (grpc + http on 127.0.0.1, port 0) -> batch -> file.
 * opts: batchTimeout ('50ms'), grpc / http / batch (extra keys of those config sections),
 * yaml (a function (defaultOpts) -> YAML text, replacing the default config),
 * args (extra command-line arguments), configEquals (pass `--config=FILE` rather than
 * `--config FILE`), ready (wait for the ports, default true), grpcPort and httpPort (use these
 * ports rather than free ones, e.g. to restart a collector on the ports it had).
 */
export async function startCollector(opts = {}) {
    const dir = tempDir();
    // Port 0: the collector binds free ports itself, with no window for another process to
    // take them; Collector.scanPorts reads them from the log.
    const [grpcPort, httpPort] = opts.grpcPort && opts.httpPort ? [opts.grpcPort, opts.httpPort]
                                                                : [0, 0];
    const outPath = path.join(dir, 'out.jsonl');
    const cfgOpts = { ...opts, grpcPort, httpPort, outPath, dir };
    const yaml = opts.yaml ? opts.yaml(cfgOpts) : collectorConfigYaml(cfgOpts);
    const configPath = path.join(dir, 'config.yaml');
    writeFileSync(configPath, yaml);
    const configArgs = opts.configEquals ? [`--config=${configPath}`] : ['--config', configPath];
    // OTELMON_WRAPPER runs the collector under a tool, e.g. "valgrind --error-exitcode=99".
    const wrapper = (process.env.OTELMON_WRAPPER ?? '').split(' ').filter(Boolean);
    // The collector's own metrics endpoint (localhost:8888 by default, as otelcol) would clash
    // between collectors running side by side: each takes a free port, read from its log
    // (Collector.telemetryPort), unless the test's config says where telemetry goes.
    const telemetryArgs = /telemetry:\s*\n\s+metrics:/.test(yaml) || opts.telemetry === false
        ? [] : ['--set=service.telemetry.metrics.address=127.0.0.1:0'];
    const argv = [...wrapper, otelmonBin(), ...configArgs, ...telemetryArgs, ...(opts.args ?? [])];
    const proc = spawn(argv[0], argv.slice(1), {
        stdio: ['ignore', 'pipe', 'pipe'],
    });
    const c = new Collector(proc, { dir, configPath, outPath, grpcPort, httpPort });
    if (opts.ready !== false) {
        await c.waitReady();
    }
    return c;
}

/** Run the binary to completion (for validate, components, flags). */
export function runOtelmon(args, opts = {}) {
    const r = spawnSync(otelmonBin(), args, { encoding: 'utf8', timeout: 30000, ...opts });
    if (r.error) {
        throw r.error;
    }
    return { code: r.status, signal: r.signal, stdout: r.stdout, stderr: r.stderr };
}

/**
 * Read the file exporter's output: one OTLP JSON request per line. Returns
 * {lines: parsed lines, resourceSpans, resourceMetrics, resourceLogs} with the resources of
 * every line merged in file order. Throws on a line that is not JSON or holds no known signal.
 */
export function readFileOutput(file) {
    const out = { lines: [], resourceSpans: [], resourceMetrics: [], resourceLogs: [] };
    if (!existsSync(file)) {
        return out;
    }
    const text = readFileSync(file, 'utf8');
    const lines = text.split('\n');
    lines.forEach((line, i) => {
        if (line.trim() === '') {
            return;
        }
        let obj;
        try {
            obj = JSON.parse(line);
        } catch (e) {
            throw new Error(`${file}:${i + 1}: not JSON (${e.message}): ${line.slice(0, 200)}`);
        }
        const keys = ['resourceSpans', 'resourceMetrics', 'resourceLogs'].filter((k) => k in obj);
        if (keys.length !== 1) {
            throw new Error(`${file}:${i + 1}: expected exactly one of resourceSpans, ` +
                            `resourceMetrics, resourceLogs: ${line.slice(0, 200)}`);
        }
        out.lines.push(obj);
        out[keys[0]].push(...obj[keys[0]]);
    });
    if (text.length > 0 && !text.endsWith('\n')) {
        throw new Error(`${file}: the last line is not terminated by a newline`);
    }
    return out;
}

/** Flatten merged resources to items: [{resource, scope, item}] for spans/metrics/logs. */
export function flattenSpans(resourceSpans) {
    const r = [];
    for (const rs of resourceSpans) {
        for (const ss of rs.scopeSpans ?? []) {
            for (const span of ss.spans ?? []) {
                r.push({ resource: rs.resource ?? {}, scope: ss.scope ?? {},
                         schemaUrl: rs.schemaUrl, scopeSchemaUrl: ss.schemaUrl, item: span });
            }
        }
    }
    return r;
}

export function flattenMetrics(resourceMetrics) {
    const r = [];
    for (const rm of resourceMetrics) {
        for (const sm of rm.scopeMetrics ?? []) {
            for (const m of sm.metrics ?? []) {
                r.push({ resource: rm.resource ?? {}, scope: sm.scope ?? {}, item: m });
            }
        }
    }
    return r;
}

export function flattenLogs(resourceLogs) {
    const r = [];
    for (const rl of resourceLogs) {
        for (const sl of rl.scopeLogs ?? []) {
            for (const rec of sl.logRecords ?? []) {
                r.push({ resource: rl.resource ?? {}, scope: sl.scope ?? {}, item: rec });
            }
        }
    }
    return r;
}

/** Poll pred() until it returns a truthy value or the bound passes. */
export async function waitFor(pred, timeoutMs, what) {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
        const v = await pred();
        if (v) {
            return v;
        }
        if (Date.now() > deadline) {
            throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
        }
        await sleep(25);
    }
}
