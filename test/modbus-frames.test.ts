// Modbus framing: exact request bytes, response validation, MBAP and RTU stream readers,
// and an interop check against modbus-serial's ServerTCP over a real 127.0.0.1 socket.
import net, { type AddressInfo } from 'node:net';
import { once } from 'node:events';
import t from 'tap';
import { ServerTCP, type IServiceVector } from 'modbus-serial';
import { decodePoint } from '../drivers/modbus/codec.js';
import {
  FrameError,
  RtuResponseReader,
  TcpFrameReader,
  buildReadPdu,
  buildWriteCoilPdu,
  buildWriteCoilsPdu,
  buildWriteRegistersPdu,
  crc16,
  encodeRtuFrame,
  encodeTcpFrame,
  expectedResponseLength,
  parseResponsePdu,
  rtuCharTimeMs,
  rtuInterFrameMs,
  type FrameErrorReason,
  type TcpFrame,
} from '../drivers/modbus/frames.js';

const hex = (s: string) => Buffer.from(s.replace(/\s+/g, ''), 'hex');
const reason = (r: FrameErrorReason) => ({ name: 'FrameError', reason: r });

// Bit-by-bit reference CRC (the code under test is table driven).
function refCrc(bytes: Buffer): Buffer {
  let crc = 0xffff;
  for (const b of bytes) {
    crc ^= b;
    for (let k = 0; k < 8; k++) crc = crc & 1 ? (crc >> 1) ^ 0xa001 : crc >> 1;
  }
  return Buffer.from([crc & 0xff, crc >> 8]);
}
const withCrc = (s: string) => Buffer.concat([hex(s), refCrc(hex(s))]);

t.test('CRC-16 and RTU frames', async (t) => {
  t.equal(crc16(hex('01 03 00 00 00 0A')), 0xcdc5);
  t.same(encodeRtuFrame(1, hex('03 00 00 00 0A')), hex('01 03 00 00 00 0A C5 CD'), 'classic example');
  t.same(encodeRtuFrame(0x11, hex('03 00 6B 00 03')), hex('11 03 00 6B 00 03 76 87'), 'spec example request');
  t.same(withCrc('11 03 06 AE 41 56 52 43 40'), hex('11 03 06 AE 41 56 52 43 40 49 AD'), 'reference CRC agrees with the spec');
  t.equal(crc16(hex('FF FF 01 03 00 00 00 0A EE'), 2, 8), 0xcdc5, 'start/end');
  const near = (got: number, want: number, msg: string) => t.ok(Math.abs(got - want) < 1e-9, `${msg}: ${got} ≈ ${want}`);
  near(rtuCharTimeMs(9600), 1.1458333333, '11 bits at 9600');
  near(rtuCharTimeMs(9600, 10), 1.0416666667, '10 bits at 9600');
  near(rtuInterFrameMs(9600), 4.0104166667, '3.5 characters at 9600');
  near(rtuInterFrameMs(19200), 2.0052083333, '19200: still 3.5 characters');
  t.equal(rtuInterFrameMs(38400), 1.75, 'above 19200: fixed 1.75 ms');
});

t.test('request PDUs', async (t) => {
  t.same(buildReadPdu('coil', 0x13, 0x13), hex('01 0013 0013'));
  t.same(buildReadPdu('discrete', 0xc4, 0x16), hex('02 00C4 0016'));
  t.same(buildReadPdu('holding', 0x6b, 3), hex('03 006B 0003'));
  t.same(buildReadPdu('input', 8, 1), hex('04 0008 0001'));
  t.same(buildWriteCoilPdu(0xac, true), hex('05 00AC FF00'));
  t.same(buildWriteCoilPdu(0xac, false), hex('05 00AC 0000'));
  t.same(buildWriteRegistersPdu(1, hex('0003')), hex('06 0001 0003'), 'one register: FC6');
  t.same(buildWriteRegistersPdu(1, hex('000A 0102')), hex('10 0001 0002 04 000A 0102'), 'two: FC16');
  const coils = [true, false, true, true, false, false, true, true, true, false];
  t.same(buildWriteCoilsPdu(0x13, coils), hex('0F 0013 000A 02 CD 01'));
  t.throws(() => buildReadPdu('holding', 0, 126), new RangeError('count 126 is not 1..125'));
  t.throws(() => buildReadPdu('holding', 65535, 2), new RangeError('2 items from 65535 run past 65535'));
  t.throws(() => buildWriteRegistersPdu(0, hex('01')), RangeError);
  t.equal(expectedResponseLength(hex('01 0013 0013')), 5, '19 coils: 3 bytes');
  t.equal(expectedResponseLength(hex('02 00C4 0010')), 4, '16 inputs: 2 bytes');
  t.equal(expectedResponseLength(hex('03 006B 0003')), 8);
  t.equal(expectedResponseLength(hex('04 0008 007D')), 252);
  for (const w of ['05 00AC FF00', '06 0001 0003', '0F 0013 000A 02 CD 01', '10 0001 0002 04 000A 0102']) {
    t.equal(expectedResponseLength(hex(w)), 5, w);
  }
});

t.test('parseResponsePdu', async (t) => {
  const read3 = hex('03 006B 0003');
  const res3 = hex('03 06 022B 0000 0064');
  const ok = parseResponsePdu(read3, res3);
  t.same(ok, { ok: true, data: hex('022B 0000 0064') });
  if (ok.ok) t.ok(ok.data.buffer === res3.buffer && ok.data.byteOffset === res3.byteOffset + 2, 'data is a view');
  t.same(parseResponsePdu(hex('01 0013 0013'), hex('01 03 CD 6B 05')), { ok: true, data: hex('CD 6B 05') });
  t.same(parseResponsePdu(hex('02 00C4 0016'), hex('02 03 AC DB 35')), { ok: true, data: hex('AC DB 35') });
  t.same(parseResponsePdu(hex('04 0008 0001'), hex('04 02 000A')), { ok: true, data: hex('000A') });
  for (const w of ['05 00AC FF00', '06 0001 0003'])
    t.same(parseResponsePdu(hex(w), hex(w)), { ok: true, data: Buffer.alloc(0) }, `echo ${w}`);
  t.same(parseResponsePdu(hex('0F 0013 000A 02 CD 01'), hex('0F 0013 000A')), { ok: true, data: Buffer.alloc(0) });
  t.same(parseResponsePdu(hex('10 0001 0002 04 000A 0102'), hex('10 0001 0002')), { ok: true, data: Buffer.alloc(0) });

  const names: [number, string][] = [
    [1, 'ILLEGAL FUNCTION'],
    [2, 'ILLEGAL DATA ADDRESS'],
    [3, 'ILLEGAL DATA VALUE'],
    [4, 'SERVER DEVICE FAILURE'],
    [5, 'ACKNOWLEDGE'],
    [6, 'SERVER DEVICE BUSY'],
    [8, 'MEMORY PARITY ERROR'],
    [10, 'GATEWAY PATH UNAVAILABLE'],
    [11, 'GATEWAY TARGET DEVICE FAILED TO RESPOND'],
    [0x42, 'EXCEPTION 66'],
  ];
  for (const [code, name] of names) {
    t.same(parseResponsePdu(read3, Buffer.from([0x83, code])), { ok: false, exception: code, name });
  }
  t.same(parseResponsePdu(hex('10 0001 0002 04 000A 0102'), hex('90 04')), { ok: false, exception: 4, name: 'SERVER DEVICE FAILURE' });

  t.throws(() => parseResponsePdu(read3, hex('04 06 022B 0000 0064')), reason('wrong_function'));
  t.throws(() => parseResponsePdu(read3, hex('84 02')), reason('wrong_function'), 'exception for another FC');
  t.throws(() => parseResponsePdu(read3, hex('03 04 022B 0000')), reason('bad_length'), 'byte count too small');
  t.throws(() => parseResponsePdu(read3, hex('03 06 022B 0000')), reason('bad_length'), 'truncated data');
  t.throws(() => parseResponsePdu(read3, hex('83 02 00')), reason('bad_length'));
  t.throws(() => parseResponsePdu(read3, Buffer.alloc(0)), reason('short_frame'));
  t.throws(() => parseResponsePdu(read3, hex('03')), reason('short_frame'));
  t.throws(() => parseResponsePdu(hex('06 0001 0003'), hex('06 0001 0004')), reason('bad_echo'));
  t.throws(() => parseResponsePdu(hex('05 00AC FF00'), hex('05 00AD FF00')), reason('bad_echo'));
  t.throws(() => parseResponsePdu(hex('10 0001 0002 04 000A 0102'), hex('10 0001 0003')), reason('bad_echo'));
  t.throws(() => parseResponsePdu(hex('10 0001 0002 04 000A 0102'), hex('10 0001')), reason('bad_length'));
  const err = t.throws(() => parseResponsePdu(read3, hex('04 00')));
  t.ok(err instanceof FrameError, 'FrameError class');
});

t.test('TCP frames', async (t) => {
  t.same(encodeTcpFrame(0x1234, 1, hex('03 006B 0003')), hex('1234 0000 0006 01 03 006B 0003'));
  const a = hex('0001 0000 0009 11 03 06 022B 0000 0064');
  const b = hex('0002 0000 0003 11 83 02');
  const both = Buffer.concat([a, b]);
  const r = new TcpFrameReader();
  const got: TcpFrame[] = [];
  for (const byte of both) got.push(...r.push(Buffer.from([byte])));
  const want = [
    { transactionId: 1, unit: 0x11, pdu: hex('03 06 022B 0000 0064') },
    { transactionId: 2, unit: 0x11, pdu: hex('83 02') },
  ];
  t.same(got, want, 'one byte at a time');
  t.same(new TcpFrameReader().push(both), want, 'two frames in one chunk');
  const r2 = new TcpFrameReader();
  t.same(r2.push(both.subarray(0, 20)), [want[0]], 'first frame and half the second');
  t.same(r2.push(both.subarray(20)), [want[1]], 'rest of the second');
  t.same(r2.push(Buffer.alloc(0)), []);
  t.throws(() => new TcpFrameReader().push(hex('0001 0001 0006 01 03 006B 0003')), reason('bad_length'), 'protocol id 1');
  t.throws(() => new TcpFrameReader().push(hex('0001 0000 012C 01')), reason('bad_length'), 'length 300');
  t.throws(() => new TcpFrameReader().push(hex('0001 0000 0001 01')), reason('bad_length'), 'length 1: no function code');
});

t.test('RTU response reader', async (t) => {
  const req = hex('03 006B 0003');
  const frame = hex('11 03 06 AE41 5652 4340 49AD');
  const r = new RtuResponseReader(0x11, req);
  t.equal(r.partial, false);
  t.equal(r.push(frame.subarray(0, 1)), null);
  t.equal(r.partial, true, 'one byte: a timeout now is a short frame');
  t.equal(r.push(frame.subarray(1, 6)), null);
  t.same(r.push(frame.subarray(6)), { pdu: hex('03 06 AE41 5652 4340') });

  const ex = new RtuResponseReader(1, req);
  t.equal(ex.push(hex('01 83')), null);
  t.same(ex.push(hex('02 C0 F1 00 00')), { pdu: hex('83 02') }, 'exception: 5 bytes, trailing noise ignored');

  const whole = withCrc('01 0F 0013 000A');
  t.same(new RtuResponseReader(1, hex('0F 0013 000A 02 CD 01')).push(whole), { pdu: hex('0F 0013 000A') });

  const bad = Buffer.from(frame);
  bad[4] ^= 0x01;
  t.throws(() => new RtuResponseReader(0x11, req).push(bad), reason('bad_crc'));
  t.throws(() => new RtuResponseReader(0x11, req).push(hex('11 83 02 00 00')), reason('bad_crc'), 'exception with bad CRC');
  t.throws(() => new RtuResponseReader(0x12, req).push(frame), reason('wrong_unit'));
  t.throws(() => new RtuResponseReader(0x11, req).push(withCrc('11 04 02 0000')), reason('wrong_function'));
});

t.test('interop with modbus-serial ServerTCP', async (t) => {
  // ServerTCP treats port 0 as "unset" and listens on 502, so find a free port first.
  const probe = net.createServer().listen(0, '127.0.0.1');
  await once(probe, 'listening');
  const port = (probe.address() as AddressInfo).port;
  await new Promise<void>((resolve) => probe.close(() => resolve()));

  const holding = [0x1234, 0xabcd, 0x42f6, 0xe979];
  // ServerTCP picks callback vs return-value style by the function's arity: keep two params.
  const vector: IServiceVector = {
    getHoldingRegister: (addr: number, _unit: number): number => {
      const v = holding[addr];
      if (v === undefined) throw Object.assign(new Error(`no register ${addr}`), { modbusErrorCode: 2 });
      return v;
    },
    setRegister: (addr: number, value: number, _unit: number): void => {
      holding[addr] = value;
    },
  };
  const server = new ServerTCP(vector, { host: '127.0.0.1', port, unitID: 1 });
  t.teardown(() => new Promise<void>((resolve) => server.close(() => resolve())));
  await new Promise<void>((resolve, reject) => {
    server.once('initialized', () => resolve());
    server.once('serverError', reject);
  });

  const sock = net.connect(port, '127.0.0.1');
  t.teardown(() => void sock.destroy());
  await once(sock, 'connect');
  const reader = new TcpFrameReader();
  const inbox: TcpFrame[] = [];
  sock.on('data', (chunk: Buffer) => inbox.push(...reader.push(chunk)));
  const nextFrame = async (): Promise<TcpFrame> => {
    const deadline = Date.now() + 2000;
    while (inbox.length === 0) {
      if (Date.now() > deadline) throw new Error('no response from ServerTCP');
      await new Promise((resolve) => setTimeout(resolve, 5));
    }
    return inbox.shift()!;
  };

  const read = buildReadPdu('holding', 0, 4);
  sock.write(encodeTcpFrame(0x0102, 1, read));
  const f = await nextFrame();
  t.same([f.transactionId, f.unit], [0x0102, 1]);
  const parsed = parseResponsePdu(read, f.pdu);
  t.same(parsed, { ok: true, data: hex('1234 ABCD 42F6 E979') });
  if (parsed.ok) {
    const p = { type: 'float32', order: 'ABCD', width: 2, scale: 1, offset: 0 } as const;
    t.equal(decodePoint(p, parsed.data, 4), Math.fround(123.456), 'float32 from a real peer');
  }

  const beyond = buildReadPdu('holding', 100, 2);
  sock.write(encodeTcpFrame(7, 1, beyond));
  t.same(parseResponsePdu(beyond, (await nextFrame()).pdu), { ok: false, exception: 2, name: 'ILLEGAL DATA ADDRESS' });

  // Two writes pipelined in one segment: answered in order, matched by transaction id.
  const w16 = buildWriteRegistersPdu(0, hex('0001 0002'));
  const w6 = buildWriteRegistersPdu(3, hex('00FF'));
  sock.write(Buffer.concat([encodeTcpFrame(8, 1, w16), encodeTcpFrame(9, 1, w6)]));
  const r8 = await nextFrame();
  const r9 = await nextFrame();
  t.same([r8.transactionId, r9.transactionId], [8, 9]);
  t.same(parseResponsePdu(w16, r8.pdu), { ok: true, data: Buffer.alloc(0) });
  t.same(parseResponsePdu(w6, r9.pdu), { ok: true, data: Buffer.alloc(0) });
  t.same(holding, [0x0001, 0x0002, 0x42f6, 0x00ff]);
});
