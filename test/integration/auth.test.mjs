// auth.test.mjs: authenticators end to end. The official OpenTelemetry JS SDK exporters (gRPC
// and HTTP/protobuf) send to a collector whose otlp receiver requires basicauth (an htpasswd
// file made by Apache's htpasswd, bcrypt and $apr1$) or bearertokenauth (a token file): the
// right credentials are accepted and the data arrives; a wrong password and a missing header
// are refused (HTTP 401, gRPC UNAUTHENTICATED) with no detail for the client; an htpasswd file
// and a token file rewritten while the collector runs take effect without a restart. Then otelmon -> otelmon:
// collector A's otlphttp and otlp exporters authenticate to B with basicauth's client side
// (`auth: {authenticator: basicauth/client}`; gRPC over TLS, as per-RPC credentials need).
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { writeFileSync, renameSync } from 'node:fs';
import path from 'node:path';
import { before, describe, test } from 'node:test';

import { flattenSpans, requireJs, startCollector, tempDir, TIME_SCALE } from '../js/harness.mjs';
import { tracesProto } from '../js/otlp_build.mjs';
import { EXPORT_PATH, eventually, outputNow } from '../js/relay.mjs';

const api = requireJs('@opentelemetry/api');
const grpc = requireJs('@grpc/grpc-js');
const { ExportResultCode } = requireJs('@opentelemetry/core');
const { BasicTracerProvider, InMemorySpanExporter, SimpleSpanProcessor } = requireJs('@opentelemetry/sdk-trace-base');

for (const k of Object.keys(process.env)) {
    if (k.startsWith('OTEL_')) {
        delete process.env[k];
    }
}
api.diag.setLogger(new api.DiagConsoleLogger(), api.DiagLogLevel.NONE);

const S = (ms) => ms * TIME_SCALE;
const UNAUTHENTICATED = 16;
const basic = (user, pw) => `Basic ${Buffer.from(`${user}:${pw}`).toString('base64')}`;

function run(cmd, args, cwd) {
    const r = spawnSync(cmd, args, { cwd, encoding: 'utf8' });
    if (r.error || r.status !== 0) {
        throw new Error(`${cmd} ${args.join(' ')} failed: ${r.error ?? r.stderr}`);
    }
    return r.stdout;
}

let dir;
let htpasswdFile;
before(() => {
    dir = tempDir('otelmon-auth-');
    htpasswdFile = path.join(dir, 'htpasswd');
    const bcrypt = run('htpasswd', ['-nbB', '-C', '5', 'alice', 'al1ce secret']).trim();
    const apr1 = run('htpasswd', ['-nbm', 'bob', 'b0b']).trim();
    writeFileSync(htpasswdFile, `${bcrypt}\n${apr1}\n`);
});

/** Spans made by the SDK, to give to an OTLP exporter's export(). */
async function sdkSpans(name) {
    const mem = new InMemorySpanExporter();
    const provider = new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(mem)] });
    provider.getTracer('auth-test').startSpan(name).end();
    await provider.forceFlush();
    const spans = mem.getFinishedSpans();
    await provider.shutdown();
    return spans;
}

/** The SDK's trace exporter over transport ('grpc' or 'http') to c, sending the header
 * `authorization: value` (none when value is undefined). */
function sdkExporter(transport, c, value) {
    if (transport === 'grpc') {
        const { OTLPTraceExporter } = requireJs('@opentelemetry/exporter-trace-otlp-grpc');
        const metadata = new grpc.Metadata();
        if (value !== undefined) {
            metadata.set('authorization', value);
        }
        return new OTLPTraceExporter({ url: `http://${c.grpcAddress}`, metadata, timeoutMillis: S(10000) });
    }
    const { OTLPTraceExporter } = requireJs('@opentelemetry/exporter-trace-otlp-proto');
    const headers = value !== undefined ? { Authorization: value } : {};
    return new OTLPTraceExporter({ url: `${c.httpUrl}/v1/traces`, headers, timeoutMillis: S(10000) });
}

/** Export one span named name; resolves to the export result ({code, error}). */
async function sdkExport(transport, c, value, name) {
    const exporter = sdkExporter(transport, c, value);
    const spans = await sdkSpans(name);
    const res = await new Promise((resolve) => exporter.export(spans, resolve));
    await exporter.shutdown();
    return res;
}

/** The status (HTTP) or gRPC code of a refusal, from the SDK's error. */
function refusalCode(transport, res) {
    assert.equal(res.code, ExportResultCode.FAILED, 'the export was refused');
    return transport === 'grpc' ? res.error?.code : res.error?.code ?? res.error?.statusCode;
}

function spanNamesIn(c) {
    const out = outputNow(c);
    return out ? flattenSpans(out.resourceSpans).map((s) => s.item.name) : [];
}

/** Extensions and a receiver that requires authenticator `id` on both protocols. */
function authSinkYaml(extensions, id, tls) {
    return (o) => {
        const t = tls ? `        tls: ${JSON.stringify(tls)}\n` : '';
        return `extensions:\n${extensions}` +
            'receivers:\n  otlp:\n    protocols:\n' +
            `      grpc:\n        endpoint: 127.0.0.1:${o.grpcPort}\n        auth: {authenticator: ${id}}\n${t}` +
            `      http:\n        endpoint: 127.0.0.1:${o.httpPort}\n        auth: {authenticator: ${id}}\n${t}` +
            `exporters:\n  file:\n    path: ${JSON.stringify(o.outPath)}\n` +
            `service:\n  extensions: [${id}]\n` +
            '  pipelines:\n    traces:\n      receivers: [otlp]\n      exporters: [file]\n';
    };
}

const basicServer = (tls) => authSinkYaml(
    `  basicauth/server:\n    htpasswd:\n      file: ${JSON.stringify(htpasswdFile)}\n      inline: "carol:c4rol"\n`,
    'basicauth/server', tls);

/** A raw gRPC Export with metadata; resolves to {code, details}. */
function grpcRaw(c, value) {
    const client = new grpc.Client(c.grpcAddress, grpc.credentials.createInsecure());
    const md = new grpc.Metadata();
    if (value !== undefined) {
        md.set('authorization', value);
    }
    return new Promise((resolve) => {
        client.makeUnaryRequest(EXPORT_PATH.traces, (b) => b, (b) => b, tracesProto('raw').bytes, md,
                                { deadline: Date.now() + S(10000) }, (err) => {
                                    client.close();
                                    resolve({ code: err ? err.code : 0, details: err?.details ?? '' });
                                });
    });
}

describe('basicauth on the otlp receiver, JS SDK exporters', () => {
    for (const transport of ['grpc', 'http']) {
        test(`${transport}: right password accepted, wrong and missing refused`, { timeout: S(60000) }, async (t) => {
            const c = await startCollector({ yaml: basicServer() });
            t.after(() => c.kill());
            await c.check(async () => {
                for (const [user, pw] of [['alice', 'al1ce secret'], ['bob', 'b0b'], ['carol', 'c4rol']]) {
                    const res = await sdkExport(transport, c, basic(user, pw), `ok.${user}.${transport}`);
                    assert.equal(res.code, ExportResultCode.SUCCESS, `${user}: ${res.error}`);
                }
                const want = transport === 'grpc' ? UNAUTHENTICATED : 401;
                const refused = {
                    'wrong password': basic('alice', 'al1ce wrong'),
                    'unknown user': basic('mallory', 'al1ce secret'),
                    'another scheme': 'Bearer al1ce secret',
                    'missing header': undefined,
                };
                for (const [label, value] of Object.entries(refused)) {
                    const res = await sdkExport(transport, c, value, `refused.${transport}`);
                    assert.equal(refusalCode(transport, res), want, label);
                }
                await eventually(() => spanNamesIn(c).length >= 3, S(10000), 'the three accepted spans');
                await c.stop();
                assert.deepEqual(spanNamesIn(c).sort(),
                                 ['alice', 'bob', 'carol'].map((u) => `ok.${u}.${transport}`).sort());
                // The collector logged the refusals, without a credential.
                assert.match(c.stderr, /invalid credentials/);
                assert.doesNotMatch(c.stderr, /al1ce|c4rol|b0b|Basic /);
            });
        });
    }

    test('refusals carry no detail: 401 "Unauthorized", UNAUTHENTICATED without the reason', { timeout: S(60000) },
         async (t) => {
             const c = await startCollector({ yaml: basicServer() });
             t.after(() => c.kill());
             await c.check(async () => {
                 const r = await fetch(`${c.httpUrl}/v1/traces`, {
                     method: 'POST', body: tracesProto('x').bytes,
                     headers: { 'content-type': 'application/x-protobuf', authorization: basic('alice', 'no') },
                 });
                 const body = await r.text();
                 assert.equal(r.status, 401);
                 assert.doesNotMatch(body, /credential|alice|htpasswd/i);
                 for (const value of [basic('alice', 'no'), undefined]) {
                     const g = await grpcRaw(c, value);
                     assert.equal(g.code, UNAUTHENTICATED);
                     assert.doesNotMatch(g.details, /credential|provided|alice/i);
                 }
                 await c.stop();
             });
         });
});

test('basicauth: the htpasswd file rewritten under a running collector takes effect', { timeout: S(60000) },
     async (t) => {
         const file = path.join(tempDir('otelmon-htpasswd-'), 'htpasswd');
         writeFileSync(file, run('htpasswd', ['-nbB', '-C', '5', 'dora', 'first pw']));
         const c = await startCollector({
             yaml: authSinkYaml(`  basicauth:\n    htpasswd:\n      file: ${JSON.stringify(file)}\n`, 'basicauth'),
         });
         t.after(() => c.kill());
         await c.check(async () => {
             const send = (pw, name) => sdkExport('http', c, basic('dora', pw), name);
             assert.equal((await send('first pw', 'first')).code, ExportResultCode.SUCCESS);
             // htpasswd -b edits the file in place (a new file renamed over it).
             run('htpasswd', ['-bB', '-C', '5', file, 'dora', 'second pw']);
             let ok = false;
             await eventually(async () => {
                 ok ||= (await send('second pw', 'second')).code === ExportResultCode.SUCCESS;
                 return ok;
             }, S(10000), 'the new password accepted');
             assert.equal(refusalCode('http', await send('first pw', 'late')), 401);
             await c.stop();
             assert.deepEqual(spanNamesIn(c).sort(), ['first', 'second']);
             assert.match(c.stderr, /htpasswd file .* read again: 1 user/);
         });
     });

describe('bearertokenauth: token file rotation seen end to end', () => {
    for (const transport of ['grpc', 'http']) {
        test(`${transport}: the new token is accepted and the old one refused, without a restart`,
             { timeout: S(60000) }, async (t) => {
                 const tokenFile = path.join(tempDir('otelmon-token-'), 'token');
                 writeFileSync(tokenFile, 'first-token\n');
                 const c = await startCollector({
                     yaml: authSinkYaml(`  bearertokenauth:\n    filename: ${JSON.stringify(tokenFile)}\n`,
                                        'bearertokenauth'),
                 });
                 t.after(() => c.kill());
                 await c.check(async () => {
                     const send = (tok, name) => sdkExport(transport, c, `Bearer ${tok}`, name);
                     assert.equal((await send('first-token', 'first')).code, ExportResultCode.SUCCESS);
                     assert.notEqual((await send('second-token', 'early')).code, ExportResultCode.SUCCESS);
                     // Replaced as agents do it: a new file renamed over the old one.
                     writeFileSync(`${tokenFile}.new`, 'second-token\n');
                     renameSync(`${tokenFile}.new`, tokenFile);
                     let ok = false;
                     await eventually(async () => {
                         ok ||= (await send('second-token', 'second')).code === ExportResultCode.SUCCESS;
                         return ok;
                     }, S(10000), 'the new token accepted');
                     const old = await send('first-token', 'late');
                     assert.equal(refusalCode(transport, old), transport === 'grpc' ? UNAUTHENTICATED : 401);
                     await c.stop();
                     assert.deepEqual(spanNamesIn(c).sort(), ['first', 'second']);
                 });
             });
    }
});

describe('otelmon -> otelmon with basicauth on the exporter', () => {
    let tls;
    before(() => {
        // A self-signed server certificate for 127.0.0.1 that A trusts: gRPC sends per-RPC
        // credentials only over TLS.
        const d = tempDir('otelmon-auth-tls-');
        run('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes',
                        '-keyout', 'server.key', '-out', 'server.crt', '-days', '2', '-subj', '/CN=localhost',
                        '-addext', 'subjectAltName=IP:127.0.0.1,DNS:localhost'], d);
        tls = { cert: path.join(d, 'server.crt'), key: path.join(d, 'server.key') };
    });

    for (const proto of ['http', 'grpc']) {
        for (const good of [true, false]) {
            const exporter = proto === 'grpc' ? 'otlp' : 'otlphttp';
            test(`${exporter} with ${good ? 'the right' : 'a wrong'} password`, { timeout: S(60000) }, async (t) => {
                const b = await startCollector({
                    yaml: basicServer(proto === 'grpc' ? { cert_file: tls.cert, key_file: tls.key } : undefined),
                });
                t.after(() => b.kill());
                const pw = good ? 'b0b' : 'not-b0b';
                const target = proto === 'grpc'
                    ? { endpoint: `127.0.0.1:${b.grpcPort}`, tls: { ca_file: tls.cert } }
                    : { endpoint: `http://127.0.0.1:${b.httpPort}` };
                const expCfg = {
                    ...target, auth: { authenticator: 'basicauth/client' },
                    retry_on_failure: { initial_interval: '100ms', max_interval: '300ms', max_elapsed_time: '60s' },
                };
                const aYaml = (o) => 'extensions:\n  basicauth/client:\n' +
                    `    client_auth: {username: bob, password: ${pw}}\n` +
                    'receivers:\n  otlp:\n    protocols:\n' +
                    `      http:\n        endpoint: 127.0.0.1:${o.httpPort}\n` +
                    `      grpc:\n        endpoint: 127.0.0.1:${o.grpcPort}\n` +
                    `exporters:\n  ${exporter}: ${JSON.stringify(expCfg)}\n` +
                    'service:\n  extensions: [basicauth/client]\n' +
                    `  pipelines:\n    traces:\n      receivers: [otlp]\n      exporters: [${exporter}]\n`;
                const a = await startCollector({ yaml: aYaml });
                t.after(() => a.kill());
                await a.check(() => b.check(async () => {
                    const r = await fetch(`${a.httpUrl}/v1/traces`, {
                        method: 'POST', headers: { 'content-type': 'application/x-protobuf' },
                        body: tracesProto(`relay.${proto}`).bytes,
                    });
                    await r.arrayBuffer();
                    assert.equal(r.status, 200);
                    if (good) {
                        await eventually(() => spanNamesIn(b).includes(`relay.${proto}`), S(20000), 'the span in B');
                        await a.stop();
                        await b.stop();
                        assert.deepEqual(spanNamesIn(b), [`relay.${proto}`]);
                    } else {
                        // B refuses; A takes the refusal as permanent (401 and UNAUTHENTICATED are
                        // not retried, as otelcol) and drops the data, saying so.
                        await eventually(() => /refused by basicauth\/server: invalid credentials/.test(b.stderr),
                                         S(20000), 'the refusal logged by B');
                        await eventually(() => /401|nauthenticated/.test(a.stderr), S(20000), 'the refusal in A\'s log');
                        await a.stop();
                        await b.stop();
                        assert.deepEqual(spanNamesIn(b), []);
                    }
                    assert.doesNotMatch(a.stderr + b.stderr, /b0b|Basic /);
                }));
            });
        }
    }
});
