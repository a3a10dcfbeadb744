// alarmstore_tls.test.mjs: the `alarmstore` exporter to MariaDB over TLS (issue 11, "with TLS
// options"). A real mariadbd (Debian `mariadb-server`) serves TLS with a certificate for
// 127.0.0.1 signed by a test CA (made with the openssl command), and its user `otelmon` is
// created with REQUIRE SSL, so a run stored proves the connection was encrypted:
//   - tls: {ca_file: the CA}             → stored;
//   - tls: {ca_file: another CA}         → refused by the certificate check, nothing stored;
//   - tls: {insecure_skip_verify: true}  → stored (encrypted, not checked);
//   - no tls section                     → the server refuses the plaintext login;
//   - tls against a server without TLS   → no fallback to plaintext, nothing stored.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';

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

function collectorYaml(port, tls) {
    return (o) => 'receivers:\n' +
        `  otlp: {protocols: {grpc: {endpoint: "127.0.0.1:${o.grpcPort}"}, http: {endpoint: "127.0.0.1:${o.httpPort}"}}}\n` +
        'exporters:\n' +
        '  alarmstore:\n' +
        `    database: "mysql://otelmon:s3cret%21pw@127.0.0.1:${port}/otelmon"\n` +
        (tls ? `    tls: ${JSON.stringify(tls)}\n` : '') +
        '    timeout: 2s\n' +
        '    retry_on_failure: {enabled: true, initial_interval: 100ms, max_interval: 300ms, max_elapsed_time: 60s}\n' +
        'service:\n' +
        '  pipelines:\n' +
        '    traces: {receivers: [otlp], exporters: [alarmstore]}\n';
}

/** One failed ETL run of process `name`, sent through the JS SDK. */
async function sendRun(c, name) {
    const exporter = new OTLPTraceExporter({ url: `${c.httpUrl}/v1/traces`, timeoutMillis: S(10000) });
    const provider = new BasicTracerProvider({
        resource: resourceFromAttributes({ 'service.name': 'etl-scripts', 'host.name': 'etl-host-1' }),
        spanProcessors: [new SimpleSpanProcessor(exporter)],
    });
    const s = provider.getTracer('otelmon.traced').startSpan(name, {
        attributes: { 'etl.process_name': name, 'etl.group_name': 'tls', 'etl.error': 'boom' },
    });
    s.setStatus({ code: api.SpanStatusCode.ERROR });
    s.end();
    await provider.forceFlush();
    await exporter.shutdown();
}

const stored = (m, name) => {
    try {
        return Number(m.sql(`SELECT COUNT(*) AS n FROM process_executions WHERE process_name = '${name}'`)[0]?.n ?? 0);
    } catch {
        return 0; // the table does not exist yet
    }
};

/** Start a collector with tls, send one run named name, and hand both to fn. */
async function withCollector(m, tls, name, fn) {
    const c = await startCollector({ yaml: collectorYaml(m.port, tls) });
    try {
        await sendRun(c, name);
        await fn(c);
    } finally {
        await c.stop();
    }
}

describe('alarmstore to MariaDB over TLS', { timeout: S(240000) }, () => {
    let pki, tlsDb, plainDb;
    before(async () => {
        pki = makePki(tempDir('otelmon-pki-'));
        [tlsDb, plainDb] = await Promise.all([
            MariaDB.create([`--ssl-ca=${pki.ca}`, `--ssl-cert=${pki.server.cert}`, `--ssl-key=${pki.server.key}`]),
            MariaDB.create(),
        ]);
        tlsDb.sql("ALTER USER 'otelmon'@'127.0.0.1' REQUIRE SSL");
    });
    after(async () => {
        await tlsDb?.stop();
        await plainDb?.stop();
    });

    test('with the CA: stored, over TLS (the user requires it)', async () => {
        await withCollector(tlsDb, { ca_file: pki.ca }, 'verified', async () => {
            await waitFor(() => stored(tlsDb, 'verified') === 1, S(30000), 'the run stored over TLS');
        });
    });

    test('a server certificate the CA did not sign: refused, nothing stored', async () => {
        await withCollector(tlsDb, { ca_file: pki.otherCa }, 'wrong-ca', async (c) => {
            await waitFor(() => /cannot connect to 127\.0\.0\.1.*(certificate|SSL|TLS)/i.test(c.stderr), S(30000),
                'a certificate error in the log');
            assert.equal(stored(tlsDb, 'wrong-ca'), 0);
        });
    });

    test('insecure_skip_verify: encrypted without the check', async () => {
        await withCollector(tlsDb, { insecure_skip_verify: true }, 'unchecked', async () => {
            await waitFor(() => stored(tlsDb, 'unchecked') === 1, S(30000), 'the run stored over unchecked TLS');
        });
    });

    test('no tls section: the plaintext login is refused by the server', async () => {
        await withCollector(tlsDb, null, 'plain', async (c) => {
            await waitFor(() => /cannot connect to 127\.0\.0\.1.*Access denied/i.test(c.stderr), S(30000),
                'the server refusing a plaintext login');
            assert.equal(stored(tlsDb, 'plain'), 0);
        });
    });

    test('tls against a server without TLS: no fallback to plaintext', async () => {
        await withCollector(plainDb, { ca_file: pki.ca }, 'no-fallback', async (c) => {
            await waitFor(() => /cannot connect to 127\.0\.0\.1.*(SSL|TLS)/i.test(c.stderr), S(30000),
                'a TLS error in the log');
            assert.equal(stored(plainDb, 'no-fallback'), 0);
        });
    });
});
