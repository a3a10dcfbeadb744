// prometheus.mjs: a real Prometheus (Debian's prometheus 2.42) for tests, on a free loopback
// port with its own data directory, remote-write receiver and native histograms on; stopped
// and started again at will, killed when the test process exits.
//
// Prometheus cannot listen on port 0 and report the port it got, so start() picks a free
// loopback port with the harness's freePorts and starts again on another one when the bind
// fails.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, writeFileSync } from 'node:fs';
import path from 'node:path';

import { freePorts, tempDir, TIME_SCALE, waitFor } from './harness.mjs';

const PROMETHEUS = '/usr/bin/prometheus';

// ---------------------------------------------------------------------------------------------
// Prometheus

export class Prometheus {
    /** extraConfig follows a global section of 1 s intervals; opts.config replaces it all. */
    constructor(extraConfig = '', opts = {}) {
        this.dir = tempDir('otelmon-prom-');
        this.config = path.join(this.dir, 'prometheus.yml');
        writeFileSync(this.config, opts.config ??
                      `global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n${extraConfig}`);
        this.log = '';
        this.proc = null;
    }

    get url() { return `http://127.0.0.1:${this.port}`; }

    /** Start on this.port (a new free one unless keepPort), wait until ready. */
    async start({ keepPort = false } = {}) {
        if (!existsSync(PROMETHEUS)) {
            throw new Error(`${PROMETHEUS} is missing: deploy/install-deps.sh --test installs Debian's prometheus`);
        }
        for (let tries = 0; tries < 3; tries++) {
            if (!keepPort || !this.port) {
                [this.port] = await freePorts(1);
            }
            this.proc = spawn(PROMETHEUS, [
                `--config.file=${this.config}`, `--storage.tsdb.path=${path.join(this.dir, 'data')}`,
                `--web.listen-address=127.0.0.1:${this.port}`, '--web.enable-remote-write-receiver',
                '--enable-feature=native-histograms', '--log.level=warn',
            ], { stdio: ['ignore', 'ignore', 'pipe'] });
            this.proc.stderr.setEncoding('utf8');
            this.proc.stderr.on('data', (d) => { this.log += d; });
            const exited = new Promise((resolve) => this.proc.once('exit', resolve));
            this.exited = exited;
            const proc = this.proc;
            process.once('exit', () => proc.kill('SIGKILL'));
            const ready = await Promise.race([
                waitFor(async () => (await this.get('/-/ready')).ok, 20000 * TIME_SCALE, 'Prometheus ready')
                    .then(() => true),
                exited.then(() => false),
            ]);
            if (ready) {
                return;
            }
            if (!/address already in use/.test(this.log) || keepPort) {
                throw new Error(`Prometheus did not start:\n${this.log}`);
            }
        }
        throw new Error(`Prometheus found no free port:\n${this.log}`);
    }

    async stop() {
        if (this.proc && this.proc.exitCode === null && this.proc.signalCode === null) {
            this.proc.kill('SIGTERM');
            await this.exited;
        }
        this.proc = null;
    }

    async get(p) {
        try {
            const res = await fetch(`${this.url}${p}`);
            return { ok: res.ok, status: res.status, body: await res.text() };
        } catch {
            return { ok: false, status: 0, body: '' };
        }
    }

    async apiGet(p) {
        const r = await this.get(p);
        assert.ok(r.ok, `GET ${p}: ${r.status} ${r.body}`);
        const j = JSON.parse(r.body);
        assert.equal(j.status, 'success', `GET ${p}: ${r.body}`);
        return j.data;
    }

    /** Instant query: [{metric, value}] with value a number (or a histogram object). */
    async query(q) {
        const data = await this.apiGet(`/api/v1/query?query=${encodeURIComponent(q)}`);
        return data.result.map((r) => ({ metric: r.metric, value: r.value ? Number(r.value[1]) : null,
                                         histogram: r.histogram ?? null }));
    }

    /** Every series matching the selector, as sorted canonical strings. */
    async series(selector) {
        const data = await this.apiGet(`/api/v1/series?match[]=${encodeURIComponent(selector)}`);
        return data.map(labelString).sort();
    }
}

/** {a:"1",__name__:"x"} -> 'x{a="1"}' with labels sorted, for comparisons and messages. */
export function labelString(m) {
    const keys = Object.keys(m).filter((k) => k !== '__name__').sort();
    return `${m.__name__}{${keys.map((k) => `${k}="${m[k]}"`).join(',')}}`;
}
