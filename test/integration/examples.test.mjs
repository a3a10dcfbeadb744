// examples.test.mjs: every example config in configs/ runs, not only validates: the collector
// starts on it, says it is ready, and stops cleanly on SIGTERM. The listening addresses are
// moved to free loopback ports (the examples listen on 0.0.0.0 and fixed ports, as in a
// container); the files the examples read come from the environment variables they name.
// Backends they export to (tempo:4317, prometheus:9090...) do not exist here: exporters
// connect lazily and retry, as otelcol's do, so that must not stop a start.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';

import { startCollector, tempDir, TIME_SCALE, waitFor } from '../js/harness.mjs';

const CONFIGS = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', 'configs');

// The files auth.yaml and file-export.yaml read, through the variables they name.
const dir = tempDir();
const htpasswd = path.join(dir, 'htpasswd');
writeFileSync(htpasswd, `app:{SHA}${createHash('sha1').update('secret').digest('base64')}\n`);
const token = path.join(dir, 'token');
writeFileSync(token, 'backend-token\n');
process.env.OTELMON_HTPASSWD = htpasswd;
process.env.OTELMON_BACKEND_TOKEN_FILE = token;
process.env.OTELMON_API_TOKEN_FILE = token;
process.env.OTELMON_FILE = path.join(dir, 'out.jsonl');
process.env.OTELMON_ALARMSTORE_DATABASE = `sqlite:///${path.join(dir, 'alarmstore.db')}`;

for (const name of readdirSync(CONFIGS).filter((f) => f.endsWith('.yaml')).sort()) {
    test(`configs/${name} starts, is ready and stops cleanly`, async (t) => {
        const text = readFileSync(path.join(CONFIGS, name), 'utf8')
            .replace(/(endpoint: *)(0\.0\.0\.0|localhost|127\.0\.0\.1):\d+/g, '$1127.0.0.1:0');
        const c = await startCollector({ yaml: () => text, ready: false });
        t.after(() => c.kill());
        await c.check(async () => {
            await waitFor(() => {
                assert.equal(c.exit, null, 'the collector exited');
                return /everything is ready/.test(c.stderr);
            }, 15000 * TIME_SCALE, `"everything is ready" for ${name}`);
            const res = await c.stop();
            assert.equal(res.code, 0);
        });
    });
}
