// A self-signed X.509 certificate for the local API, built with node:crypto alone (Node
// can sign but not issue certificates; a PKI package would be a large dependency for
// one function). ECDSA P-256, SHA-256, with the box's names and addresses as subject
// alternative names so browsers and curl can check them, serverAuth only, CA:FALSE.
// The DER below is the minimum RFC 5280 asks for; `X509Certificate` parses the result.
import { X509Certificate, createHash, generateKeyPairSync, randomBytes, sign } from 'node:crypto';
import { isIP } from 'node:net';

function der(tag: number, ...content: Buffer[]): Buffer {
  const body = Buffer.concat(content);
  const n = body.length;
  if (n < 0x80) return Buffer.concat([Buffer.from([tag, n]), body]);
  const len: number[] = [];
  for (let v = n; v > 0; v >>= 8) len.unshift(v & 0xff);
  return Buffer.concat([Buffer.from([tag, 0x80 | len.length, ...len]), body]);
}

const seq = (...c: Buffer[]) => der(0x30, ...c);

function oid(dotted: string): Buffer {
  const [a, b, ...rest] = dotted.split('.').map(Number) as [number, number, ...number[]];
  const bytes = [40 * a + b];
  for (const v of rest) {
    const chunk = [v & 0x7f];
    for (let x = v >> 7; x > 0; x >>= 7) chunk.unshift(0x80 | (x & 0x7f));
    bytes.push(...chunk);
  }
  return der(0x06, Buffer.from(bytes));
}

function time(d: Date): Buffer {
  const iso = d.toISOString().replace(/[-:T]/g, '').slice(0, 14) + 'Z'; // YYYYMMDDHHMMSSZ
  return d.getUTCFullYear() < 2050 ? der(0x17, Buffer.from(iso.slice(2))) : der(0x18, Buffer.from(iso));
}

function ipBytes(ip: string): Buffer {
  if (isIP(ip) === 4) return Buffer.from(ip.split('.').map(Number));
  const [head = '', tail = ''] = ip.split('::');
  const groups = (s: string) => (s ? s.split(':') : []);
  const h = groups(head);
  const t = groups(tail);
  const all = ip.includes('::') ? [...h, ...new Array<string>(8 - h.length - t.length).fill('0'), ...t] : h;
  return Buffer.concat(all.map((g) => Buffer.from([(parseInt(g, 16) >> 8) & 0xff, parseInt(g, 16) & 0xff])));
}

const name = (cn: string) =>
  seq(der(0x31, seq(oid('2.5.4.10'), der(0x0c, Buffer.from('Outpost')))), der(0x31, seq(oid('2.5.4.3'), der(0x0c, Buffer.from(cn)))));

const extension = (id: string, value: Buffer, critical = false) =>
  seq(oid(id), ...(critical ? [der(0x01, Buffer.from([0xff]))] : []), der(0x04, value));

export interface SelfSigned {
  certPem: string;
  keyPem: string;
  cert: X509Certificate;
}

/** Issues a certificate for `names` (DNS names and IP addresses), valid from now for `days`. */
export function selfSignedCertificate(commonName: string, names: readonly string[], days = 3650, now = new Date()): SelfSigned {
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
  const serial = randomBytes(16);
  serial[0] &= 0x7f; // a positive INTEGER
  const ecdsaSha256 = seq(oid('1.2.840.10045.4.3.2'));
  const san = seq(...[...new Set(names)].map((n) => (isIP(n) ? der(0x87, ipBytes(n)) : der(0x82, Buffer.from(n, 'ascii')))));
  const tbs = seq(
    der(0xa0, der(0x02, Buffer.from([2]))), // v3
    der(0x02, serial),
    ecdsaSha256,
    name(commonName),
    seq(time(new Date(now.getTime() - 60_000)), time(new Date(now.getTime() + days * 86_400_000))),
    name(commonName),
    publicKey.export({ type: 'spki', format: 'der' }),
    der(
      0xa3,
      seq(
        extension('2.5.29.19', seq(), true), // basicConstraints: not a CA
        extension('2.5.29.37', seq(oid('1.3.6.1.5.5.7.3.1'))), // extKeyUsage: serverAuth
        extension('2.5.29.17', san),
      ),
    ),
  );
  const signature = sign('sha256', tbs, privateKey);
  const certDer = seq(tbs, ecdsaSha256, der(0x03, Buffer.from([0]), signature));
  const certPem = `-----BEGIN CERTIFICATE-----\n${certDer
    .toString('base64')
    .replace(/(.{64})/g, '$1\n')
    .replace(/\n?$/, '\n')}-----END CERTIFICATE-----\n`;
  const keyPem = privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
  return { certPem, keyPem, cert: new X509Certificate(certPem) };
}

/** The base64 SHA-256 of the certificate's public key, as `curl --pinnedpubkey sha256//…` takes it. */
export function publicKeyPin(cert: X509Certificate): string {
  const spki = cert.publicKey.export({ type: 'spki', format: 'der' });
  return 'sha256//' + createHash('sha256').update(spki).digest('base64');
}
