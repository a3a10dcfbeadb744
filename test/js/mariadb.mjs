// mariadb.mjs: a real MariaDB server (Debian `mariadb-server`) for tests: its own data
// directory and socket in a temporary directory, a free loopback port, a database `otelmon`
// and a user 'otelmon'@'127.0.0.1' with a password; stopped and started again at will, killed
// when the test process exits.
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import path from 'node:path';

import { freePorts, tempDir, TIME_SCALE, waitFor } from './harness.mjs';

const S = (ms) => ms * TIME_SCALE;

export class MariaDB {
    constructor(dir, port) {
        this.dir = dir;
        this.port = port;
        this.sock = path.join(dir, 'mysqld.sock');
        this.data = path.join(dir, 'data');
    }

    /** A new server in a temporary directory; extraArgs go to mariadbd (e.g. TLS settings). */
    static async create(extraArgs = []) {
        const dir = tempDir('otelmon-mariadb-');
        const [port] = await freePorts(1);
        const m = new MariaDB(dir, port);
        m.extraArgs = extraArgs;
        mkdirSync(m.data);
        const user = process.getuid?.() === 0 ? 'root' : process.env.USER ?? 'root';
        const r = spawnSync('mariadb-install-db', ['--no-defaults', `--user=${user}`, `--datadir=${m.data}`,
            '--auth-root-authentication-method=socket', '--skip-test-db'], { encoding: 'utf8', timeout: 120000 });
        assert.equal(r.status, 0, `mariadb-install-db failed: ${r.stderr}`);
        m.user = user;
        await m.start();
        // A user with a password, over TCP: the exporter authenticates as an application does.
        m.sql("CREATE DATABASE otelmon; CREATE USER 'otelmon'@'127.0.0.1' IDENTIFIED BY 's3cret!pw';" +
              "GRANT ALL ON otelmon.* TO 'otelmon'@'127.0.0.1';");
        return m;
    }

    async start() {
        this.proc = spawn('mariadbd', ['--no-defaults', `--user=${this.user}`, `--datadir=${this.data}`,
            `--socket=${this.sock}`, `--port=${this.port}`, '--bind-address=127.0.0.1',
            `--pid-file=${path.join(this.dir, 'pid')}`, `--log-error=${path.join(this.dir, 'err.log')}`,
            '--innodb-buffer-pool-size=32M', '--skip-name-resolve', ...this.extraArgs], { stdio: 'ignore' });
        this.exited = new Promise((resolve) => this.proc.once('exit', resolve));
        process.once('exit', () => this.proc.kill('SIGKILL'));
        await waitFor(() => spawnSync('mariadb-admin', ['--no-defaults', `--socket=${this.sock}`, '-uroot', 'ping'],
            { encoding: 'utf8' }).status === 0, S(30000), 'mariadbd to answer');
    }

    async stop() {
        this.proc.kill('SIGTERM');
        await this.exited;
    }

    /** Run SQL as root over the socket; the rows as objects (NULL as null). */
    sql(q) {
        const r = spawnSync('mariadb', ['--no-defaults', `--socket=${this.sock}`, '-uroot', '--batch',
            'otelmon', '-e', q], { encoding: 'utf8' });
        if (r.status !== 0 && /Unknown database/.test(r.stderr)) {
            const r2 = spawnSync('mariadb', ['--no-defaults', `--socket=${this.sock}`, '-uroot', '-e', q],
                { encoding: 'utf8' });
            assert.equal(r2.status, 0, r2.stderr);
            return [];
        }
        assert.equal(r.status, 0, r.stderr);
        const lines = r.stdout.split('\n').filter((l) => l !== '');
        if (lines.length === 0) {
            return [];
        }
        const head = lines[0].split('\t');
        return lines.slice(1).map((l) => Object.fromEntries(l.split('\t')
            .map((v, i) => [head[i], v === 'NULL' ? null : v])));
    }
}
