// LoRaWAN payload codecs: the built-in Cayenne LPP codec against the published examples,
// and sandboxed user codecs (test/fixtures/lorawan-codecs/*.js), good and hostile. Every
// hostile codec must come back as a CodecError with the right reason while this process
// and a good codec carry on.
import { fileURLToPath } from 'node:url';
import t, { type Test } from 'tap';
import { decodeLpp, encodeLpp, lppCodec } from '../drivers/lorawan/codecs/lpp.js';
import { CodecError, loadCodec, type CodecErrorReason, type PayloadCodec } from '../drivers/lorawan/codecs/sandbox.js';

const FIXTURES = fileURLToPath(new URL('../../test/fixtures/lorawan-codecs/', import.meta.url));
const LIMITS = { timeoutMs: 50, memoryBytes: 16 * 1024 * 1024 };
const hex = (s: string) => Uint8Array.from(Buffer.from(s.replace(/\s+/g, ''), 'hex'));
const up = (bytes: Uint8Array, fPort = 1) => ({ bytes, fPort, recvTime: new Date('2024-05-01T12:00:00Z') });
const load = (name: string) => loadCodec(FIXTURES + name, LIMITS);

/** Runs fn, which must throw a CodecError; returns it with how long the call took. */
function codecError(fn: () => unknown): { err: CodecError; ms: number } {
  const start = performance.now();
  try {
    fn();
  } catch (err) {
    if (err instanceof CodecError) return { err, ms: performance.now() - start };
    throw err;
  }
  throw new Error('expected a CodecError, the call returned');
}

t.test('LPP: the published examples', async (t) => {
  // myDevices, Cayenne docs "LoRa > Cayenne LPP > Examples" (myDevicesIoT/cayenne-docs,
  // docs/LORA.md), also TTI lorawan-stack-docs payload-formatters/cayenne.md (TTS reports
  // 27.200000762939453: it decodes through float32; exact decimal here).
  t.same(decodeLpp(hex('03 67 01 10 05 67 00 FF')), { data: { temperature_3: 27.2, temperature_5: 25.5 }, warnings: [], errors: [] });
  t.same(decodeLpp(hex('01 67 FF D7')).data, { temperature_1: -4.1 });
  t.same(decodeLpp(hex('06 71 04 D2 FB 2E 00 00')).data, { accelerometer_6: { x: 1.234, y: -1.234, z: 0 } });
  t.same(decodeLpp(hex('01 88 06 76 5f f2 96 0a 00 03 e8')).data, { gps_1: { latitude: 42.3519, longitude: -87.9094, altitude: 10 } });
  t.same(lppCodec.decodeUplink(up(hex('01 67 FF D7'))).data, { temperature_1: -4.1 }, 'through the PayloadCodec interface');
});

t.test('LPP: every other type, values worked out by hand', async (t) => {
  const frame = hex(
    '01 00 01  02 01 00  03 02 FF 9C  04 03 04 D2  05 65 03 E8  06 66 01  07 68 61  08 73 27 7F' +
      '09 86 00 64 FF 9C 27 10  0A 74 01 F4  0B 75 03 E8  0C 76 00 01 86 A0  0D 78 64  0E 79 FF 38' +
      '0F 7D 01 90  10 80 05 DC  11 82 00 00 30 39  12 83 00 01 E2 40  13 84 00 B4  14 85 65 00 00 00' +
      '15 87 FF 80 00  16 8E 01  17 64 00 00 01 00',
  );
  const r = decodeLpp(frame);
  t.same(r.errors, []);
  t.same(r.data, {
    digital_in_1: 1,
    digital_out_2: 0,
    analog_in_3: -1,
    analog_out_4: 12.34,
    illuminance_5: 1000,
    presence_6: 1,
    humidity_7: 48.5,
    barometer_8: 1011.1,
    gyrometer_9: { x: 1, y: -1, z: 100 },
    voltage_10: 5,
    current_11: 1,
    frequency_12: 100000,
    percentage_13: 100,
    altitude_14: -200,
    concentration_15: 400,
    power_16: 1500,
    distance_17: 12.345,
    energy_18: 123.456,
    direction_19: 180,
    unixtime_20: 1694498816,
    colour_21: { r: 255, g: 128, b: 0 },
    switch_22: 1,
    generic_23: 256,
  });
});

t.test('LPP: truncated and unknown input is reported, not thrown', async (t) => {
  let r = decodeLpp(hex('03 67 01'));
  t.same(r.data, {});
  t.same(r.errors, ['offset 0: temperature (0x67) on channel 3 needs 2 bytes, 1 left']);
  r = decodeLpp(hex('03 67 01 10 05'));
  t.same(r.data, { temperature_3: 27.2 }, 'what decoded before the cut is kept');
  t.match(r.errors, [/^offset 4: a channel byte without a type/]);
  r = decodeLpp(hex('01 67 00 0A 02 99 00 00 03 67 00 01'));
  t.same(r.data, { temperature_1: 1 });
  t.same(r.errors, ['offset 4: unknown LPP type 0x99 on channel 2; stopped decoding']);
  r = decodeLpp(hex('01 67 00 0A 01 67 00 14'));
  t.same(r.data, { temperature_1: 2 });
  t.match(r.warnings, [/temperature_1 appears twice/]);
  t.same(decodeLpp(new Uint8Array(0)), { data: {}, warnings: [], errors: [] });
});

t.test('LPP: encodeDownlink for digital and analog outputs', async (t) => {
  const r = encodeLpp({ digital_out_1: 1, analog_out_2: -1.5, digital_out_7: false }, 99);
  t.same([...r.bytes], [...hex('01 01 01  02 03 FF 6A  07 01 00')]);
  t.equal(r.fPort, 99);
  t.same(r.errors, []);
  const bad = lppCodec.encodeDownlink!({ digital_out_1: 2, temperature_1: 20, analog_out_3: 400, analog_out_300: 1 });
  t.equal(bad.bytes.length, 0, 'nothing is sent when any field is wrong');
  t.equal(bad.errors.length, 4);
  t.match(bad.errors.join('\n'), /digital_out_1: must be 0, 1/);
  t.match(bad.errors.join('\n'), /temperature_1: LPP downlink takes/);
  t.match(bad.errors.join('\n'), /analog_out_3: must be a number from -327.68/);
});

t.test('sandboxed codecs', async (t) => {
  const good = await load('good.js');
  const hostile: PayloadCodec[] = [];
  t.teardown(() => {
    good.close();
    for (const c of hostile) c.close();
  });
  const goodStillWorks = (t: Test) =>
    t.same(good.decodeUplink(up(hex('03 67 01 10 01 68 64'), 7)).data, {
      temperature_3: 27.2,
      humidity_1: 50,
      fPort: 7,
      received: '2024-05-01T12:00:00.000Z',
    });
  const expectFailure = (t: Test, c: PayloadCodec, fPort: number, reason: CodecErrorReason, message: RegExp) => {
    const { err, ms } = codecError(() => c.decodeUplink(up(hex('01 02 03'), fPort)));
    t.equal(err.reason, reason, `fPort ${fPort}: ${err.message}`);
    t.match(err.message, message);
    t.ok(err.message.includes(c.name), 'the message names the codec file');
    return ms;
  };

  t.test('a good codec decodes and encodes', async (t) => {
    t.equal(good.name, FIXTURES + 'good.js');
    const r = good.decodeUplink(up(hex('03 67 01 10 05 67 00 FF 06 71 04 D2 FB 2E 00 00 02 00 01'), 3));
    t.same(r, {
      data: {
        temperature_3: 27.2,
        temperature_5: 25.5,
        accelerometer_6: { x: 1.234, y: -1.234, z: 0 },
        digital_in_2: 1,
        fPort: 3,
        received: '2024-05-01T12:00:00.000Z',
      },
      warnings: [],
      errors: [],
    });
    t.same(good.decodeUplink(up(new Uint8Array(0))).warnings, ['empty payload']);
    t.same(good.decodeUplink(up(hex('01 99'))), { data: {}, warnings: [], errors: ['unknown type 153 at 0'] }, 'TTN-style errors only');
    const buf = Buffer.from('aabb0367ffd7', 'hex').subarray(2);
    t.same(good.decodeUplink(up(buf)).data.temperature_3, -4.1, 'a Buffer view is read from its own offset');
    const e = good.encodeDownlink!({ setpoint: 21.5 });
    t.same([...e.bytes], [0x01, 0x00, 0xd7]);
    t.equal(e.fPort, 10);
    const bad = good.encodeDownlink!({});
    t.same(bad.errors, ['setpoint must be a number']);
    t.equal(bad.bytes.length, 0);
    t.match(good.encodeDownlink!({ n: 1n }).errors, [/not JSON/], 'host data that is not JSON');
  });

  t.test('an infinite loop is stopped at the deadline, and the codec recovers', async (t) => {
    const c = await load('loop.js');
    hostile.push(c);
    t.equal(typeof c.encodeDownlink, 'undefined', 'no encodeDownlink in the file, none on the codec');
    const ms = expectFailure(t, c, 1, 'timeout', /decodeUplink ran past 50 ms/);
    t.ok(ms < 500, `stopped after ${ms.toFixed(0)} ms`);
    t.same(c.decodeUplink(up(hex('00'), 2)).data, { alive: true });
    goodStillWorks(t);
  });

  t.test('a loop around a heavy builtin is stopped hard; the engine is replaced', async (t) => {
    const c = await load('builtin-loop.js');
    hostile.push(c);
    const ms = expectFailure(t, c, 1, 'timeout', /stopped hard/);
    t.ok(ms < 1000, `stopped after ${ms.toFixed(0)} ms`);
    t.same(c.decodeUplink(up(hex('00'), 2)).data, { calls: 1 }, 'a fresh engine: its globals start over');
    goodStillWorks(t);
  });

  t.test('a codec that throws', async (t) => {
    const c = await load('throws.js');
    hostile.push(c);
    expectFailure(t, c, 1, 'threw', /threw TypeError: boom at byte 3 at decodeUplink \(.*throws\.js:3/);
    goodStillWorks(t);
  });

  t.test('results that are not JSON data of the right shape', async (t) => {
    const c = await load('bad-result.js');
    hostile.push(c);
    expectFailure(t, c, 1, 'bad_result', /returned number, not an object/);
    expectFailure(t, c, 2, 'bad_result', /returned a function at "f"/);
    expectFailure(t, c, 3, 'bad_result', /100019 characters of JSON, over 65536/);
    expectFailure(t, c, 4, 'bad_result', /no data object/);
    expectFailure(t, c, 5, 'bad_result', /non-plain object at "when"/);
    t.same(c.decodeUplink(up(hex('00'), 6)).data, { ok: true });
    const enc = (kind: string) => codecError(() => c.encodeDownlink!({ kind })).err;
    t.match(enc('range'), { reason: 'bad_result', message: /bytes\[2\] = 256, not an integer 0-255/ });
    t.match(enc('float'), { reason: 'bad_result', message: /bytes\[0\] = 1.5/ });
    t.match(enc('long'), { reason: 'bad_result', message: /243 bytes, over 242/ });
    t.match(enc('port'), { reason: 'bad_result', message: /fPort 0, not 1-223/ });
    t.same([...c.encodeDownlink!({ kind: 'ok' }).bytes], [9, 8, 7], 'a Uint8Array is accepted as bytes');
    goodStillWorks(t);
  });

  t.test('allocating a gigabyte hits the memory cap; the runtime is rebuilt', async (t) => {
    const rss = process.memoryUsage().rss;
    const c = await load('memory.js');
    hostile.push(c);
    expectFailure(t, c, 1, 'memory', /ran out of memory \(limit 16777216 bytes\)/);
    t.same(c.decodeUplink(up(hex('00'), 3)).data, { kept: 0 }, 'what it held is gone');
    expectFailure(t, c, 2, 'memory', /ran out of memory/);
    const grew = (process.memoryUsage().rss - rss) / 2 ** 20;
    t.ok(grew < 100, `this process grew ${grew.toFixed(0)} MiB`);
    goodStillWorks(t);
  });

  t.test('unbounded recursion is a stack error', async (t) => {
    const c = await load('stack.js');
    hostile.push(c);
    expectFailure(t, c, 1, 'memory', /overflowed its stack/);
    goodStillWorks(t);
  });

  t.test('a codec cannot reach Node', async (t) => {
    const c = await load('node-access.js');
    hostile.push(c);
    expectFailure(t, c, 1, 'threw', /ReferenceError: 'require' is not defined/);
    expectFailure(t, c, 2, 'threw', /ReferenceError: 'process' is not defined/);
    expectFailure(t, c, 3, 'threw', /TypeError: cannot read property 'env' of undefined/);
    t.same(c.decodeUplink(up(hex('00'), 4)).data, { leaked: 'undefined' }, 'no process behind the Function constructor');
    const seen = c.decodeUplink(up(hex('00'), 9)).data;
    t.same(Object.values(seen), new Array(Object.keys(seen).length).fill('undefined'), JSON.stringify(seen));
    t.equal(typeof process.exit, 'function', 'still here');
    goodStillWorks(t);
  });

  t.test('a promise is not a result', async (t) => {
    const c = await load('async.js');
    hostile.push(c);
    expectFailure(t, c, 1, 'bad_result', /non-plain object as the result/);
    expectFailure(t, c, 2, 'bad_result', /left promise jobs behind/);
  });

  t.test('load errors', async (t) => {
    const failed = async (name: string) => {
      try {
        await load(name);
      } catch (err) {
        if (err instanceof CodecError) return err;
        throw err;
      }
      throw new Error(`${name} loaded`);
    };
    t.match(await failed('syntax-error.js'), { reason: 'load', message: /syntax-error\.js: failed to load: SyntaxError: expecting ','/ });
    t.match(await failed('no-decoder.js'), { reason: 'load', message: /no-decoder\.js: defines no function decodeUplink/ });
    t.match(await failed('missing.js'), { reason: 'load', message: /missing\.js: cannot read it: ENOENT/ });
    t.match(await failed('load-loop.js'), { reason: 'load', message: /top-level code ran past 1000 ms/ });
    goodStillWorks(t);
  });
});
