// pki.mjs: test certificates made with the openssl command in a directory: a CA (test-ca), a
// server certificate it signs for IP:127.0.0.1 and DNS:localhost, a client certificate, and a
// second CA (other-ca) with its own client certificate (stranger) that must not be accepted.
import { spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import path from 'node:path';

function openssl(args, cwd) {
    const r = spawnSync('openssl', args, { cwd, encoding: 'utf8' });
    if (r.error || r.status !== 0) {
        throw new Error(`openssl ${args.join(' ')} failed: ${r.error ?? r.stderr}`);
    }
}

/** A CA (name) and certificates it signs: {ca, certs: {name: {cert, key}}} as file paths. */
export function makePki(dir) {
    const key = (name) => openssl(['genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256', '-out',
                                   `${name}.key`], dir);
    const ca = (name) => {
        key(name);
        openssl(['req', '-x509', '-new', '-key', `${name}.key`, '-out', `${name}.crt`, '-days', '2', '-subj',
                 `/CN=${name}`, '-addext', 'basicConstraints=critical,CA:TRUE',
                 '-addext', 'keyUsage=critical,keyCertSign,cRLSign'], dir);
    };
    const leaf = (name, caName, ext) => {
        key(name);
        openssl(['req', '-new', '-key', `${name}.key`, '-out', `${name}.csr`, '-subj', `/CN=${name}`], dir);
        writeFileSync(path.join(dir, `${name}.ext`), ext);
        openssl(['x509', '-req', '-in', `${name}.csr`, '-CA', `${caName}.crt`, '-CAkey', `${caName}.key`,
                 '-CAcreateserial', '-out', `${name}.crt`, '-days', '2', '-extfile', `${name}.ext`], dir);
    };
    ca('test-ca');
    ca('other-ca');
    leaf('server', 'test-ca', 'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n' +
         'basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\n');
    const clientExt = 'extendedKeyUsage=clientAuth\nbasicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\n';
    leaf('client', 'test-ca', clientExt);
    leaf('stranger', 'other-ca', clientExt);
    const f = (n) => path.join(dir, n);
    return {
        ca: f('test-ca.crt'), otherCa: f('other-ca.crt'),
        server: { cert: f('server.crt'), key: f('server.key') },
        client: { cert: f('client.crt'), key: f('client.key') },
        stranger: { cert: f('stranger.crt'), key: f('stranger.key') },
    };
}
