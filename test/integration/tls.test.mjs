// tls.test.mjs: TLS between collectors. B's otlp receiver serves TLS (tls.cert_file, key_file)
// and, with tls.client_ca_file, requires a client certificate signed by that CA (mutual TLS),
// on gRPC and on HTTP; A's `otlp` and `otlphttp` exporters trust a CA (tls.ca_file) and present
// a client certificate (tls.cert_file, key_file). The certificates are made at test time with
// the openssl command: a CA, a server certificate for IP:127.0.0.1 and DNS:localhost, a client
// certificate, and a second CA with its own client certificate that B must not accept.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import https from 'node:https';
import { before, describe, test } from 'node:test';

import { makePki } from '../js/pki.mjs';
import { flattenSpans, requireJs, sleep, startCollector, tempDir, TIME_SCALE } from '../js/harness.mjs';
import { tracesProto } from '../js/otlp_build.mjs';
import { EXPORT_PATH, eventually, outputNow, relayYaml, sinkYaml } from '../js/relay.mjs';

const grpc = requireJs('@grpc/grpc-js');
const S = (ms) => ms * TIME_SCALE;
const FAST_RETRY = { initial_interval: '100ms', max_interval: '500ms', max_elapsed_time: '120s' };

let pki;
before(() => {
    pki = makePki(tempDir('otelmon-tls-'));
});

/** B's receiver TLS: server certificate, and with mtls the client CA. */
function serverTls(mtls) {
    const t = { cert_file: pki.server.cert, key_file: pki.server.key };
    if (mtls) {
        t.client_ca_file = pki.ca;
    }
    return t;
}

function spanNamesIn(c) {
    const out = outputNow(c);
    return out ? flattenSpans(out.resourceSpans).map((s) => s.item.name) : [];
}

/** POST over HTTPS; resolves to the status or the error code/message of a refused connection. */
function httpsPost(port, urlPath, body, tlsOpts) {
    return new Promise((resolve) => {
        const req = https.request({
            host: '127.0.0.1', port, method: 'POST', path: urlPath, agent: false, ca: readFileSync(pki.ca),
            headers: { 'content-type': 'application/x-protobuf' }, ...tlsOpts,
        }, (res) => {
            res.resume();
            res.on('end', () => resolve(res.statusCode));
        });
        req.on('error', (e) => resolve(e.code ?? e.message));
        req.setTimeout(S(10000), () => req.destroy(new Error('client timeout')));
        req.end(body);
    });
}

/** One gRPC Export over TLS; resolves to 0 (OK) or the status code. */
function grpcsExport(port, bytes, { cert, key } = {}) {
    const creds = grpc.credentials.createSsl(readFileSync(pki.ca), key ? readFileSync(key) : null,
                                             cert ? readFileSync(cert) : null);
    const client = new grpc.Client(`127.0.0.1:${port}`, creds);
    return new Promise((resolve) => {
        client.makeUnaryRequest(EXPORT_PATH.traces, (b) => b, (b) => b, bytes, new grpc.Metadata(),
                                { deadline: Date.now() + S(10000) }, (err) => {
                                    client.close();
                                    resolve(err ? err.code : 0);
                                });
    });
}

async function withCollectors(list, fn) {
    try {
        return await fn();
    } catch (e) {
        await sleep(200);
        for (const [name, c] of Object.entries(list)) {
            e.message += `\n=== collector ${name}\n${c.describe()}`;
        }
        throw e;
    }
}

/** A's exporter config towards B over protocol `proto` with the client TLS settings `tls`. */
function exporterTo(b, proto, tls) {
    return proto === 'grpc'
        ? ['otlp', { endpoint: `127.0.0.1:${b.grpcPort}`, tls, retry_on_failure: FAST_RETRY }]
        : ['otlphttp', { endpoint: `https://127.0.0.1:${b.httpPort}`, tls, retry_on_failure: FAST_RETRY }];
}

async function sendSpanToA(a, name) {
    const r = await fetch(`${a.httpUrl}/v1/traces`, {
        method: 'POST', headers: { 'content-type': 'application/x-protobuf' }, body: tracesProto(name).bytes,
    });
    await r.arrayBuffer();
    assert.equal(r.status, 200, `A answered ${r.status} to ${name}`);
}

/** Start B (TLS, mtls or not) and A (exporter over proto with tls); send spans; return both. */
async function chain(t, proto, clientTls, { mtls = true } = {}) {
    const b = await startCollector({ yaml: sinkYaml({ grpcTls: serverTls(mtls), httpTls: serverTls(mtls) }) });
    t.after(() => b.kill());
    const [name, cfg] = exporterTo(b, proto, clientTls);
    const a = await startCollector({ yaml: relayYaml(name, cfg) });
    t.after(() => a.kill());
    return { a, b };
}

describe('TLS between A and B', () => {
    for (const proto of ['grpc', 'http']) {
        const exporter = proto === 'grpc' ? 'otlp' : 'otlphttp';
        test(`${exporter} -> B over ${proto} with mutual TLS: data arrives`, { timeout: S(60000) }, async (t) => {
            const { a, b } = await chain(t, proto, { ca_file: pki.ca, cert_file: pki.client.cert, key_file: pki.client.key });
            await withCollectors({ A: a, B: b }, async () => {
                const names = ['mtls.1', 'mtls.2', 'mtls.3'].map((n) => `${n}.${proto}`);
                for (const n of names) {
                    await sendSpanToA(a, n);
                }
                await eventually(() => names.every((n) => spanNamesIn(b).includes(n)), S(20000), 'the spans in B');
                await a.stop();
                await b.stop();
                assert.deepEqual(spanNamesIn(b).sort(), [...names].sort(), 'each span once in B');
            });
        });

        test(`${exporter} -> B over ${proto} with server TLS only (ca_file): data arrives`, { timeout: S(60000) },
             async (t) => {
                 const { a, b } = await chain(t, proto, { ca_file: pki.ca }, { mtls: false });
                 await withCollectors({ A: a, B: b }, async () => {
                     await sendSpanToA(a, `tls.${proto}`);
                     await eventually(() => spanNamesIn(b).includes(`tls.${proto}`), S(20000), 'the span in B');
                     await a.stop();
                     await b.stop();
                 });
             });

        // The client TLS settings of A that B (or A itself) must refuse; pki exists only once
        // the tests run, hence functions.
        const refusals = {
            'without a client certificate': () => ({ ca_file: pki.ca }),
            'with a client certificate from another CA': () => ({ ca_file: pki.ca, cert_file: pki.stranger.cert,
                                                                  key_file: pki.stranger.key }),
            'not trusting the server\'s CA': () => ({ ca_file: pki.otherCa, cert_file: pki.client.cert,
                                                      key_file: pki.client.key }),
        };
        for (const [label, tlsOf] of Object.entries(refusals)) {
            test(`${exporter} -> B over ${proto} ${label}: nothing is delivered`, { timeout: S(60000) }, async (t) => {
                const tls = tlsOf();
                const { a, b } = await chain(t, proto, tls);
                await withCollectors({ A: a, B: b }, async () => {
                    await sendSpanToA(a, `refused.${proto}`);
                    // A has failed and retried several times: each attempt was refused.
                    await eventually(() => (a.stderr.match(/will retry/gi) ?? []).length >= 3, S(20000),
                                     'three failed attempts logged by A');
                    assert.deepEqual(spanNamesIn(b), [], 'B received nothing');
                    // A keeps retrying; how A shuts down with an unreachable backend is the
                    // subject of a test in exporters.test.mjs.
                    a.kill();
                    await b.stop();
                    assert.deepEqual(spanNamesIn(b), [], 'B received nothing');
                });
            });
        }
    }
});

describe('TLS at the receiver, seen by node clients', () => {
    test('HTTPS with mutual TLS: 200 with the client certificate, refused without or with a stranger\'s',
         { timeout: S(60000) }, async (t) => {
             const b = await startCollector({ yaml: sinkYaml({ grpcTls: serverTls(true), httpTls: serverTls(true) }) });
             t.after(() => b.kill());
             await b.check(async () => {
                 const ok = await httpsPost(b.httpPort, '/v1/traces', tracesProto('https.with-cert').bytes,
                                            { cert: readFileSync(pki.client.cert), key: readFileSync(pki.client.key) });
                 assert.equal(ok, 200, 'with the client certificate');
                 const none = await httpsPost(b.httpPort, '/v1/traces', tracesProto('https.no-cert').bytes, {});
                 assert.notEqual(none, 200, 'without a client certificate');
                 assert.equal(typeof none, 'string', `without a client certificate: refused in TLS, got ${none}`);
                 const stranger = await httpsPost(b.httpPort, '/v1/traces', tracesProto('https.stranger').bytes,
                                                  { cert: readFileSync(pki.stranger.cert), key: readFileSync(pki.stranger.key) });
                 assert.equal(typeof stranger, 'string', `with a stranger's certificate: refused in TLS, got ${stranger}`);
                 // Plain HTTP to the TLS port is no way around it.
                 const plain = await fetch(`http://127.0.0.1:${b.httpPort}/v1/traces`, {
                     method: 'POST', headers: { 'content-type': 'application/x-protobuf' },
                     body: tracesProto('http.plain').bytes,
                 }).then((r) => r.status, (e) => e.cause?.code ?? e.message);
                 assert.notEqual(plain, 200, 'plain HTTP to the TLS port');
                 await b.stop();
                 assert.deepEqual(spanNamesIn(b), ['https.with-cert'], 'only the span sent with the certificate arrived');
             });
         });

    test('gRPC with mutual TLS: OK with the client certificate, UNAVAILABLE without or with a stranger\'s',
         { timeout: S(60000) }, async (t) => {
             const b = await startCollector({ yaml: sinkYaml({ grpcTls: serverTls(true), httpTls: serverTls(true) }) });
             t.after(() => b.kill());
             await b.check(async () => {
                 assert.equal(await grpcsExport(b.grpcPort, tracesProto('grpcs.with-cert').bytes, pki.client), 0,
                              'with the client certificate');
                 assert.equal(await grpcsExport(b.grpcPort, tracesProto('grpcs.no-cert').bytes), grpc.status.UNAVAILABLE,
                              'without a client certificate');
                 assert.equal(await grpcsExport(b.grpcPort, tracesProto('grpcs.stranger').bytes, pki.stranger),
                              grpc.status.UNAVAILABLE, 'with a stranger\'s certificate');
                 const plain = new grpc.Client(`127.0.0.1:${b.grpcPort}`, grpc.credentials.createInsecure());
                 const code = await new Promise((resolve) => plain.makeUnaryRequest(
                     EXPORT_PATH.traces, (x) => x, (x) => x, tracesProto('grpc.plain').bytes, new grpc.Metadata(),
                     { deadline: Date.now() + S(5000) }, (err) => resolve(err ? err.code : 0)));
                 plain.close();
                 assert.notEqual(code, 0, 'plaintext gRPC to the TLS port');
                 await b.stop();
                 assert.deepEqual(spanNamesIn(b), ['grpcs.with-cert'], 'only the span sent with the certificate arrived');
             });
         });
});
