// The LoRaWAN driver's pure parts: regional parameters, the 32-bit frame counter,
// receive-window choice, the downlink queue bound, gateway liveness, GWMP refusals.
import t from 'tap';
import { chooseWindow, DownlinkQueueFull, DownlinkQueues } from '../drivers/lorawan/downlinks.js';
import { fullFCnt } from '../drivers/lorawan/frames.js';
import { GatewayRegistry } from '../drivers/lorawan/gateways.js';
import { GwmpError, parseDatagram } from '../drivers/lorawan/gwmp.js';
import { REGIONS } from '../drivers/lorawan/regions.js';

t.test('regions: RX1 and RX2 per RP002', async (t) => {
  const eu = REGIONS.EU868;
  t.same(eu.rx1(868.3, 5, 2), { freq: 868.3, datr: 'SF9BW125', powe: 14 }, 'EU868 RX1: same frequency, DR5 - offset 2 = DR3');
  t.same(eu.rx2(), { freq: 869.525, datr: 'SF12BW125', powe: 14 });
  t.equal(eu.uplinkDr('SF7BW250'), 6);
  t.equal(eu.cfList()!.readUIntLE(0, 3), 8_671_000, 'CFList: 867.1 MHz in 100 Hz units');
  const us = REGIONS.US915;
  t.same(us.rx1(904.1, 0, 0), { freq: 923.9, datr: 'SF10BW500', powe: 20 }, 'US915: channel 9 → downlink channel 1, DR0 → DR10');
  t.same(us.rx1(903.0, 4, 0).datr, 'SF7BW500', 'the 500 kHz uplink DR4 → DR13');
  t.same(us.rx1(902.3, 3, 3).datr, 'SF10BW500', 'DR3 with offset 3 → DR10');
  t.same(us.rx2(), { freq: 923.3, datr: 'SF12BW500', powe: 20 });
  t.equal(us.uplinkDr('SF12BW125'), null, 'SF12 is not a US915 uplink rate');
});

t.test('frame counter: rollover, replays and the first frame', async (t) => {
  t.equal(fullFCnt(-1, 7), 7, 'first frame: taken as sent');
  t.equal(fullFCnt(65_535, 0), 65_536, 'rolled over');
  t.equal(fullFCnt(65_537, 65_530), 65_530, 'an old frame from before the rollover (a replay)');
  t.equal(fullFCnt(131_075, 2), 131_074, 'same epoch, just behind: a replay');
  t.equal(fullFCnt(0x1_0005, 0x0006), 0x1_0006, 'same epoch, ahead');
});

t.test('receive windows: RX1 while there is time, then RX2, then none', async (t) => {
  const up = { tmst: 4_294_000_000, freq: 868.1, dr: 5, receivedAt: 1_000_000 };
  const r1 = chooseWindow(REGIONS.EU868, up, 1, 0, 1_000_050);
  t.same([r1?.window, r1?.tmst], ['rx1', (4_294_000_000 + 1_000_000) % 2 ** 32], 'RX1, tmst wrapping at 2^32');
  t.equal(chooseWindow(REGIONS.EU868, up, 1, 0, 1_000_950)?.window, 'rx2', 'too close to RX1: RX2');
  t.equal(chooseWindow(REGIONS.EU868, up, 1, 0, 1_001_950), null, 'both windows missed');
});

t.test('downlink queue: bounded per device, expired entries dropped', async (t) => {
  const q = new DownlinkQueues(2);
  const d = (id: string, expiresAt: number) => ({
    id,
    fPort: 1,
    bytes: Buffer.alloc(1),
    confirmed: false,
    expiresAt,
    requestedBy: 't',
    attempts: 0,
  });
  t.equal(q.enqueue('a', d('1', 100)), 1);
  t.equal(q.enqueue('a', d('2', 1_000)), 2);
  t.throws(() => q.enqueue('a', d('3', 1_000)), DownlinkQueueFull);
  const expired: string[] = [];
  t.equal(q.peek('a', 500, (x) => expired.push(x.id))?.id, '2');
  t.same(expired, ['1']);
});

t.test('gateways: unknown ones refused unless allowed; silent ones go offline', async (t) => {
  const r = new GatewayRegistry([{ eui: 'AA555A0000000101', name: 'roof' }], false, 60_000);
  t.equal(r.admit('ffffffffffffffff'), null);
  const g = r.admit('aa555a0000000101')!;
  t.equal(g.id, 'roof');
  t.equal(r.heard(g, 0), true, 'first contact: it came online');
  t.same(r.sweep(30_000), []);
  t.same(
    r.sweep(61_000).map((x) => x.id),
    ['roof'],
    'offline after 60 s of silence',
  );
  t.equal(new GatewayRegistry([], true, 1).admit('0102030405060708')?.configured, false, 'allowUnknownGateways admits strangers');
});

t.test('GWMP: malformed datagrams are refused with a reason', async (t) => {
  const reason = (b: Buffer) => {
    try {
      parseDatagram(b);
      return 'parsed';
    } catch (err) {
      return err instanceof GwmpError ? err.reason : 'other';
    }
  };
  const eui = Buffer.alloc(8, 1);
  t.equal(reason(Buffer.from([2, 0])), 'truncated');
  t.equal(reason(Buffer.from([3, 0, 0, 2])), 'bad_version');
  t.equal(reason(Buffer.from([2, 0, 0, 9])), 'bad_identifier');
  t.equal(reason(Buffer.from([2, 0, 0, 2, 1, 2])), 'truncated', 'PULL_DATA without its EUI');
  t.equal(reason(Buffer.concat([Buffer.from([2, 0, 0, 0]), eui, Buffer.from('{"rxpk":')])), 'bad_json');
  const d = parseDatagram(
    Buffer.concat([
      Buffer.from([2, 1, 2, 0]),
      eui,
      Buffer.from('{"rxpk":[{"tmst":1,"freq":868.1,"rssi":-1,"datr":"SF7BW125","data":"QAE="},{"bad":1}]}'),
    ]),
  );
  t.match(d, { kind: 'push', token: 0x0102, badRxpk: 1 });
});
