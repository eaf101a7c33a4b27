// `outpost map test --device X --payload file.json`: the readings an HTTP device's payload
// would produce (its mapping, or the standard forms), without a running gateway.
import { readFileSync } from 'node:fs';
import type { Command } from 'commander';
import type { CliHooks } from '../../gateway/contract/descriptor.js';
import { applyMapping } from '../payloads/mapping.js';
import { PayloadError, decodeTelemetry } from '../payloads/telemetry.js';
import type { HttpDeviceConfig, HttpDriverConfig } from './schema.js';

export function registerMapCli(program: Command, hooks: CliHooks<HttpDriverConfig, HttpDeviceConfig>): void {
  program
    .command('map')
    .description('foreign payload mappings')
    .command('test')
    .description('print the readings a payload would produce for a device (its mapping, or the standard JSON forms)')
    .addOption(hooks.configOption())
    .requiredOption('--device <id>', 'an HTTP device of the site file')
    .requiredOption('--payload <file>', 'a JSON file as the device sends it')
    .option('--json', 'print JSON')
    .action((o: { config?: string; device: string; payload: string; json?: boolean }) => {
      const { section, site } = hooks.load(o.config);
      const d = site.devices.find((x) => x.id === o.device);
      if (!d) throw new Error(`no HTTP device "${o.device}" in the site file`);
      const body = readFileSync(o.payload);
      const now = Date.now();
      try {
        const readings = d.config.mapping
          ? applyMapping(JSON.parse(body.toString('utf8')) as unknown, d.config.mapping, d.id, now)
          : decodeTelemetry(body, { device: d.id, now, maxReadings: section.maxReadingsPerRequest });
        if (o.json) return console.log(JSON.stringify(readings, null, 2));
        for (const r of readings)
          console.log(`${new Date(r.ts).toISOString()} ${r.device} ${r.point} = ${JSON.stringify(r.value)}${r.unit ? ` ${r.unit}` : ''}`);
        if (readings.length === 0) console.log('no readings (no mapped path is present)');
      } catch (err) {
        if (err instanceof PayloadError || err instanceof SyntaxError) {
          console.error(`refused (${err instanceof PayloadError ? err.reason : 'invalid_json'}): ${err.message}`);
          process.exitCode = 1;
          return;
        }
        throw err;
      }
    });
}
