// LoRaWAN bench: `npm run bench -- lorawan [--devices 1000] [--gateways 10] [--uplinks 30000] [--window 64]`
// D OTAA devices join, then N uplinks with 10-50 byte Cayenne LPP payloads, each heard by 1-3
// of G packet forwarders (lib/lora-devices.ts, a child process), go from UDP to committed
// readings in this process's gateway: uplinks/s, CPU, RSS. Baseline in the same run: a bare
// loop of lora-packet parse + MIC check + decrypt on the same frames (in the child).
import { randomBytes } from 'node:crypto';
import { lorawan } from '../../drivers/lorawan/index.js';
import { int, parseOptions } from './lib/cli.js';
import { Child, Guard, libScript } from './lib/procs.js';
import { printReport, progress, sleep } from './lib/report.js';
import { Peaks, UsageWindow, peaksMB } from './lib/sampling.js';
import { benchSite, startGateway } from './lib/site.js';
import { parsePrometheus, round, total } from './lib/stats.js';
import type { LoraDevicesArgs } from './lib/lora-devices.js';

const hex = (n: number) => randomBytes(n).toString('hex');

export async function main(argv: string[]): Promise<void> {
  const opts = parseOptions('lorawan', argv, {
    devices: int(1000, 1, 100_000),
    gateways: int(10, 1, 100),
    uplinks: int(30_000, 100, 10_000_000),
    window: int(64, 1, 4096),
  });
  const log = progress('lorawan');
  const guard = new Guard();
  let stopGateway = async (): Promise<void> => undefined;
  try {
    const gateways = Array.from({ length: opts.gateways }, () => hex(8));
    const devices = Array.from({ length: opts.devices }, (_, i) => ({ id: `lora-${i}`, devEui: hex(8), appKey: hex(16) }));
    const site = benchSite(guard.tempDir('lorawan'), {
      drivers: {
        lorawan: {
          enabled: true,
          host: '127.0.0.1',
          port: 0,
          gateways: gateways.map((eui) => ({ eui })),
          profiles: { lpp: { codec: 'lpp' } },
        },
      },
      devices: devices.map((d) => ({ id: d.id, zone: 'bench', lorawan: { devEui: d.devEui, appKey: d.appKey, profile: 'lpp' } })),
    });
    const { gw } = await startGateway(site, 'bench.yaml');
    stopGateway = () => gw.stop();
    const port = gw.supervisor.instanceOf(lorawan)!.port!;
    const stored = async () =>
      total(
        parsePrometheus(await gw.metrics.text()).filter((s) => s.labels.result === 'stored'),
        'outpost_lorawan_uplinks_total',
      );

    const args: LoraDevicesArgs = { port, gateways, devices, uplinks: opts.uplinks, window: opts.window };
    const radio = new Child('lora-devices', [libScript('lora-devices'), JSON.stringify(args)]);
    guard.children.add(radio);
    const joinMs = Number(await radio.waitFor('joined', 600_000));
    await radio.waitFor('ready', 600_000);
    log(`${opts.devices} devices joined in ${joinMs} ms; sending ${opts.uplinks} uplinks`);

    const before = await stored();
    const peaks = new Peaks(100).start();
    const usage = new UsageWindow();
    const sent = radio.ask('run', 'sent', 600_000);
    const deadline = Date.now() + 600_000;
    let n = 0;
    while ((n = (await stored()) - before) < opts.uplinks && Date.now() < deadline) await sleep(20);
    const end = performance.now();
    const window = usage.close(end);
    peaks.stop();
    const { datagrams, unacknowledged } = JSON.parse(await sent) as { datagrams: number; unacknowledged: number };
    const bare = JSON.parse(await radio.ask('bare', 'bare', 600_000)) as { perSec: number };
    await radio.stop();
    const perSec = round(n / window.seconds, 0)!;
    const readings = await gw.db.reader.runAndReadAll("SELECT count(*)::INTEGER FROM readings WHERE device LIKE 'lora-%'");
    const ratio = round(perSec / bare.perSec);
    printReport(
      'lorawan',
      {
        ...opts,
        joinMs,
        uplinksStored: n,
        datagrams,
        datagramsUnacknowledged: unacknowledged,
        readingsStored: readings.getRows()[0][0],
        uplinksPerSec: perSec,
        bareLoraPacketPerSec: bare.perSec,
        ratioVsBare: ratio,
        gatewayProcess: { cpuPercent: window.cpuPercent, mainThreadBusyPercent: window.mainThreadBusyPercent, ...peaksMB(peaks) },
        window,
      },
      `lorawan: ${perSec} uplinks/s UDP → committed (${opts.devices} OTAA devices, ${opts.gateways} gateways, 1-3 copies each, LPP), ` +
        `${ratio}× a bare lora-packet parse+MIC+decrypt loop (${bare.perSec}/s); gateway CPU ${window.cpuPercent}% (main thread ${window.mainThreadBusyPercent}%), peak RSS ${peaksMB(peaks).peakRssMB} MB`,
    );
  } finally {
    await stopGateway();
    guard.release();
  }
}
