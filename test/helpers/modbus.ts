// A real Modbus TCP peer for tests: modbus-serial's ServerTCP on 127.0.0.1, backed by
// plain arrays, counting the register read requests it serves.
import ModbusRTU from 'modbus-serial';
import { freePort } from './gateway.js';

type ServerTCP = InstanceType<typeof ModbusRTU.ServerTCP>;

export interface ModbusPeer {
  port: number;
  holding: number[];
  input: number[];
  coils: boolean[];
  discrete: boolean[];
  /** Register read requests served, by function code (3 holding, 4 input). */
  reads: { holding: number; input: number };
  /** Addresses that answer with exception 2 (illegal data address). */
  illegal: Set<number>;
  close(): Promise<void>;
}

function illegalAddress(): Error {
  return Object.assign(new Error('illegal data address'), { modbusErrorCode: 2 });
}

/** Starts the peer; `unitID` 255 answers every unit, another value only that unit. */
export async function startModbusPeer(opts: { unitID?: number; size?: number } = {}): Promise<ModbusPeer> {
  const size = opts.size ?? 1000;
  const port = await freePort();
  const peer = {
    port,
    holding: new Array<number>(size).fill(0),
    input: new Array<number>(size).fill(0),
    coils: new Array<boolean>(size).fill(false),
    discrete: new Array<boolean>(size).fill(false),
    reads: { holding: 0, input: 0 },
    illegal: new Set<number>(),
  };
  const range = (arr: number[], addr: number, length: number) => {
    for (let a = addr; a < addr + length; a++) if (peer.illegal.has(a) || a >= arr.length) throw illegalAddress();
    return arr.slice(addr, addr + length);
  };
  const vector = {
    getMultipleHoldingRegisters: (addr: number, length: number) => {
      peer.reads.holding++;
      return range(peer.holding, addr, length);
    },
    getMultipleInputRegisters: (addr: number, length: number) => {
      peer.reads.input++;
      return range(peer.input, addr, length);
    },
    // modbus-serial serves a 1-register read through these instead of getMultiple*.
    getHoldingRegister: (addr: number) => {
      peer.reads.holding++;
      return range(peer.holding, addr, 1)[0];
    },
    getInputRegister: (addr: number) => {
      peer.reads.input++;
      return range(peer.input, addr, 1)[0];
    },
    getCoil: (addr: number) => {
      if (peer.illegal.has(addr) || addr >= size) throw illegalAddress();
      return peer.coils[addr];
    },
    getDiscreteInput: (addr: number) => {
      if (addr >= size) throw illegalAddress();
      return peer.discrete[addr];
    },
    setCoil: (addr: number, value: boolean) => {
      if (addr >= size) throw illegalAddress();
      peer.coils[addr] = value;
    },
    setRegister: (addr: number, value: number) => {
      if (addr >= size) throw illegalAddress();
      peer.holding[addr] = value;
    },
  };
  const server: ServerTCP = new ModbusRTU.ServerTCP(vector, { host: '127.0.0.1', port, unitID: opts.unitID ?? 255 });
  await new Promise<void>((resolve, reject) => {
    server.on('initialized', () => resolve());
    server.on('serverError', (err) => reject(err ?? new Error('modbus server error')));
  });
  server.on('socketError', () => undefined);
  return {
    ...peer,
    close: () =>
      new Promise<void>((resolve) => {
        for (const sock of server.socks.keys()) sock.destroy();
        server.close(() => resolve());
      }),
  };
}

/** Writes a JS number into registers as big-endian bytes of the given width via a Buffer. */
export function setRegisters(target: number[], address: number, bytes: Buffer): void {
  for (let i = 0; i < bytes.length / 2; i++) target[address + i] = bytes.readUInt16BE(i * 2);
}
