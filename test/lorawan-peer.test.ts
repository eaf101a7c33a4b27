// The ForwarderPeer's framing, against a minimal GWMP server written here (not the driver):
// headers, tokens, JSON, TX_ACK, protocol version 1, timeouts and close().
import { createSocket, type RemoteInfo, type Socket } from 'node:dgram';
import { once } from 'node:events';
import t, { type Test } from 'tap';
import { ForwarderPeer, GWMP, type ForwarderPeerOptions } from './helpers/lorawan-peer.js';

const EUI = '0102030405060708';

interface Got {
  msg: Buffer;
  from: RemoteInfo;
}

// Acks PUSH_DATA and PULL_DATA (or not, or with a wrong token) and sends PULL_RESP on demand.
class Responder {
  readonly got: Got[] = [];
  ack: 'match' | 'wrong' | 'none' = 'match';
  lastPull: RemoteInfo | undefined;
  private waiters: { ident: number; resolve: (g: Got) => void }[] = [];
  private seen = new Set<Got>();
  private constructor(readonly sock: Socket) {
    sock.on('message', (msg, from) => {
      const g = { msg, from };
      this.got.push(g);
      const ident = msg[3];
      if (ident === GWMP.PULL_DATA) this.lastPull = from;
      if ((ident === GWMP.PUSH_DATA || ident === GWMP.PULL_DATA) && this.ack !== 'none') {
        const token = this.ack === 'wrong' ? msg.readUInt16BE(1) ^ 0xffff : msg.readUInt16BE(1);
        const ack = Buffer.from([msg[0], token >> 8, token & 0xff, ident === GWMP.PUSH_DATA ? GWMP.PUSH_ACK : GWMP.PULL_ACK]);
        sock.send(ack, from.port, from.address);
      }
      const i = this.waiters.findIndex((w) => w.ident === ident);
      if (i >= 0) this.waiters.splice(i, 1)[0].resolve(g);
    });
  }
  static async start(): Promise<Responder> {
    const sock = createSocket('udp4');
    sock.bind(0, '127.0.0.1');
    await once(sock, 'listening');
    return new Responder(sock);
  }
  get port(): number {
    return this.sock.address().port;
  }
  next(ident: number, ms = 1000): Promise<Got> {
    const had = this.got.find((g) => g.msg[3] === ident && !this.seen.has(g));
    if (had) return Promise.resolve(this.mark(had));
    return new Promise((resolve, reject) => {
      const w = {
        ident,
        resolve: (g: Got) => {
          clearTimeout(timer);
          resolve(this.mark(g));
        },
      };
      const timer = setTimeout(() => {
        this.waiters.splice(this.waiters.indexOf(w), 1);
        reject(new Error(`no identifier ${ident} within ${ms} ms`));
      }, ms);
      this.waiters.push(w);
    });
  }
  private mark(g: Got): Got {
    this.seen.add(g);
    return g;
  }
  pullResp(body: Buffer | object, token = 0xbeef, version = 2): void {
    const to = this.lastPull;
    if (!to) throw new Error('no PULL_DATA seen yet');
    const json = Buffer.isBuffer(body) ? body : Buffer.from(JSON.stringify(body));
    this.sock.send(Buffer.concat([Buffer.from([version, token >> 8, token & 0xff, GWMP.PULL_RESP]), json]), to.port, to.address);
  }
  close(): Promise<void> {
    return new Promise((resolve) => this.sock.close(() => resolve()));
  }
}

const phy = Buffer.from('40F17DBE4900020001954378762B11FF0D', 'hex');
const txpk = {
  imme: false,
  tmst: 1_000_000,
  freq: 869.525,
  rfch: 0,
  powe: 14,
  modu: 'LORA',
  datr: 'SF9BW125',
  codr: '4/5',
  ipol: true,
  size: phy.length,
  data: phy.toString('base64'),
};

async function setup(t: Test, version: 1 | 2 = 2, extra: Partial<ForwarderPeerOptions> = {}) {
  const srv = await Responder.start();
  const peer = await ForwarderPeer.start({
    gatewayEui: EUI,
    server: { host: '127.0.0.1', port: srv.port },
    version,
    ackTimeoutMs: 300,
    ...extra,
  });
  t.teardown(async () => {
    await peer.close();
    await srv.close();
  });
  return { srv, peer };
}

t.test('PULL_DATA / PULL_ACK', async (t) => {
  const { srv, peer } = await setup(t);
  const ack = await peer.pullData();
  const { msg, from } = await srv.next(GWMP.PULL_DATA);
  t.equal(msg.length, 12, 'header + EUI, no body');
  t.equal(msg[0], 2, 'version');
  t.equal(msg.readUInt16BE(1), ack.token, 'the ack carried the request token');
  t.equal(msg[3], GWMP.PULL_DATA);
  t.equal(msg.subarray(4, 12).toString('hex'), EUI, 'EUI MSB first');
  t.equal(from.address, '127.0.0.1');
  t.equal(from.port, peer.addresses().down.port, 'sent from the down socket');
  t.not(peer.addresses().up.port, peer.addresses().down.port);
});

t.test('PUSH_DATA rxpk / PUSH_ACK', async (t) => {
  const { srv, peer } = await setup(t);
  await peer.pushUplink(phy, { freq: 868.3, datr: 'SF10BW125', rssi: -97, lsnr: -3.5, chan: 2, tmst: 4_000_000_123, codr: '4/6' });
  const { msg, from } = await srv.next(GWMP.PUSH_DATA);
  t.equal(msg[3], GWMP.PUSH_DATA);
  t.equal(msg.subarray(4, 12).toString('hex'), EUI);
  t.equal(from.port, peer.addresses().up.port, 'sent from the up socket');
  const body = JSON.parse(msg.subarray(12).toString()) as { rxpk: Record<string, unknown>[] };
  t.equal(body.rxpk.length, 1);
  const r = body.rxpk[0];
  t.equal(Buffer.from(r.data as string, 'base64').toString('hex'), phy.toString('hex'));
  t.same(
    {
      size: r.size,
      stat: r.stat,
      modu: r.modu,
      freq: r.freq,
      datr: r.datr,
      rssi: r.rssi,
      lsnr: r.lsnr,
      chan: r.chan,
      tmst: r.tmst,
      codr: r.codr,
    },
    { size: 17, stat: 1, modu: 'LORA', freq: 868.3, datr: 'SF10BW125', rssi: -97, lsnr: -3.5, chan: 2, tmst: 4_000_000_123, codr: '4/6' },
  );
  t.match(r.time, /^\d{4}-\d\d-\d\dT/);
  await peer.pushStat({ rxnb: 3 });
  const stat = JSON.parse((await srv.next(GWMP.PUSH_DATA)).msg.subarray(12).toString()) as { stat: Record<string, unknown> };
  t.equal(stat.stat.rxnb, 3);
  t.match(stat.stat.time, /^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d GMT$/);
});

t.test('acks with a wrong token or none time out; strays are kept', async (t) => {
  const { srv, peer } = await setup(t);
  srv.ack = 'wrong';
  await t.rejects(peer.pullData(), /no PULL_ACK for token [0-9a-f]{4} within 300 ms/);
  t.match(peer.strays, [{ via: 'down', reason: /unknown token/ }]);
  srv.ack = 'none';
  await t.rejects(peer.pushUplink(phy), /no PUSH_ACK/);
  srv.ack = 'match';
  await peer.sendRaw(Buffer.from('02abcd09ffff', 'hex'));
  t.equal((await srv.next(9)).msg.toString('hex'), '02abcd09ffff', 'sendRaw sends the bytes as they are');
});

t.test('PULL_RESP -> downlink + TX_ACK (version 2)', async (t) => {
  const { srv, peer } = await setup(t);
  await peer.pullData();
  srv.pullResp({ txpk }, 0xbeef);
  const d = await peer.nextDownlink(1000);
  t.equal(d.phy.toString('hex'), phy.toString('hex'));
  t.same(d.txpk, txpk);
  t.same(d.problems, []);
  t.equal(d.token, 0xbeef);
  const ack = await srv.next(GWMP.TX_ACK);
  t.equal(ack.msg.subarray(0, 4).toString('hex'), '02beef05', 'version, same token, TX_ACK');
  t.equal(ack.msg.subarray(4, 12).toString('hex'), EUI);
  t.same(JSON.parse(ack.msg.subarray(12).toString()), { txpk_ack: { error: 'NONE' } });

  peer.txAckError = 'TOO_LATE';
  srv.pullResp({ txpk: { ...txpk, ipol: false, size: 3 } }, 0x1234);
  const late = await peer.nextDownlink(1000);
  t.same(late.problems, ['size 3 but data is 17 bytes', 'ipol is not true (LoRaWAN downlinks invert the IQ)']);
  t.same(JSON.parse((await srv.next(GWMP.TX_ACK)).msg.subarray(12).toString()), { txpk_ack: { error: 'TOO_LATE' } });
  t.equal(peer.downlinks.length, 2);

  srv.pullResp(Buffer.from('{"txpk":'), 0x0001);
  await t.rejects(peer.nextDownlink(200), /no PULL_RESP within 200 ms/);
  t.match(peer.strays, [{ reason: 'PULL_RESP with invalid JSON' }]);
});

t.test('version 1: no tokens in PULL_RESP, no TX_ACK', async (t) => {
  const { srv, peer } = await setup(t, 1);
  await peer.pushUplink(phy);
  t.equal((await srv.next(GWMP.PUSH_DATA)).msg[0], 1);
  await peer.pullData();
  srv.pullResp({ txpk }, 0, 1);
  const d = await peer.nextDownlink(1000);
  t.equal(d.txAck, null);
  await t.rejects(srv.next(GWMP.TX_ACK, 300), /no identifier 5/);
  srv.pullResp({ txpk }, 0, 2);
  await t.rejects(peer.nextDownlink(200));
  t.match(peer.strays, [{ reason: 'version 2, expected 1' }]);
});

t.test('close() rejects what waits and refuses new work', async (t) => {
  const { srv, peer } = await setup(t);
  srv.ack = 'none';
  const waiting = peer.nextDownlink(10_000);
  const pulling = peer.pullData();
  await peer.close();
  await t.rejects(waiting, /closed/);
  await t.rejects(pulling, /closed/);
  await t.rejects(peer.pullData(), /closed/);
  await t.rejects(peer.sendRaw(Buffer.alloc(4)), /closed/);
  await peer.close();
});

t.test('start() checks the EUI', async (t) => {
  await t.rejects(ForwarderPeer.start({ gatewayEui: 'xyz', server: { host: '127.0.0.1', port: 1700 } }), RangeError);
});

t.test('only the server is heard; keepalive; a server that is gone', async (t) => {
  const { srv, peer } = await setup(t, 2, { keepaliveMs: 40 });
  await srv.next(GWMP.PULL_DATA, 500);
  await srv.next(GWMP.PULL_DATA, 500);
  t.pass('keepalive repeats PULL_DATA');
  const other = createSocket('udp4');
  other.bind(0, '127.0.0.1');
  await once(other, 'listening');
  const resp = Buffer.concat([Buffer.from([2, 0, 9, GWMP.PULL_RESP]), Buffer.from(JSON.stringify({ txpk }))]);
  other.send(resp, peer.addresses().down.port, '127.0.0.1');
  await t.rejects(peer.nextDownlink(200), /no PULL_RESP/, 'a PULL_RESP from another port is dropped, as by a connected socket');
  other.close();

  const gone = await Responder.start();
  const port = gone.port;
  await gone.close();
  const lost = await ForwarderPeer.start({ gatewayEui: EUI, server: { host: '127.0.0.1', port }, ackTimeoutMs: 200 });
  t.teardown(() => lost.close());
  await t.rejects(lost.pullData(), /no PULL_ACK/);
  await t.rejects(lost.pullData(), /no PULL_ACK|ECONNREFUSED/, 'ICMP errors do not crash the peer');
});
