#!/usr/bin/env node
// The `outpost` command for installers: run the daemon, check and create configs, ask a
// running gateway how it is, query its store, and make credentials. Heavy modules
// (DuckDB, aedes, fastify) load only in the commands that need them, so help is instant.
import { Argument, Command, Option } from 'commander';
import { copyFileSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { schemaJson, type SiteConfig } from '../config/schema.js';
import { ConfigError, DEFAULT_CONFIG_PATH, PACKAGE_ROOT, loadConfigFile } from '../config/site.js';
import { VERSION } from './kernel/package.js';
import { hashPassword, newApiToken, sha256Hex } from './kernel/secrets.js';
import { registerCloudCommands } from './cli/cloud.js';
import { ROLES } from './kernel/schema-kit.js';
import { DRIVERS } from '../drivers/index.js';
import { driverSection, siteView } from '../config/views.js';
import type { AnyDriverDescriptor } from './contract/descriptor.js';

function load(path: string | undefined): { config: SiteConfig; path: string } {
  const p = path ?? process.env.OUTPOST_CONFIG ?? DEFAULT_CONFIG_PATH;
  return { config: loadConfigFile(p), path: p };
}

async function readSecret(prompt: string): Promise<string> {
  if (process.stdin.isTTY) process.stderr.write(prompt);
  const chunks: Buffer[] = [];
  for await (const c of process.stdin) chunks.push(c as Buffer);
  return Buffer.concat(chunks)
    .toString('utf8')
    .replace(/\r?\n$/, '');
}

const configOption = () =>
  new Option('-c, --config <file>', 'site config (YAML); default: $OUTPOST_CONFIG or the bundled config/default.yaml');

function buildProgram(): Command {
  const program = new Command('outpost')
    .description('Outpost edge gateway: MQTT/Modbus/LoRaWAN/camera ingest, local store, rules and sync')
    .version(VERSION, '-V, --version')
    .showHelpAfterError();

  program
    .command('run')
    .description('run the gateway daemon (stops cleanly on SIGTERM/SIGINT)')
    .addOption(configOption())
    .action(async (o: { config?: string }) => {
      const { config, path } = load(o.config);
      const { runDaemon } = await import('./cli/run.js');
      await runDaemon(config, path);
    });

  program
    .command('validate')
    .description('check a site config; errors are printed as file:line:col path: message')
    .argument('<file>', 'site config (YAML)')
    .action((file: string) => {
      const config = loadConfigFile(file);
      console.log(`${file}: ok (site ${config.site}, ${config.devices.length} devices)`);
    });

  program
    .command('init')
    .description('write a commented starter config')
    .argument('[file]', 'where to write it', 'site.yaml')
    .option('-f, --force', 'overwrite an existing file')
    .action((file: string, o: { force?: boolean }) => {
      if (existsSync(file) && !o.force) throw new Error(`${file} already exists (use --force to overwrite)`);
      copyFileSync(join(PACKAGE_ROOT, 'config', 'starter.yaml'), file);
      console.log(`wrote ${file}; edit it, then: outpost validate ${file} && outpost run --config ${file}`);
    });

  program
    .command('status')
    .description('ask the running gateway for its status')
    .addOption(configOption())
    .option('--url <url>', 'gateway API base URL (default: from the config, on loopback)')
    .option('--token <token>', 'API token (default: $OUTPOST_TOKEN or <dataDir>/admin.token)')
    .option('--json', 'print JSON')
    .action(async (o: { config?: string; url?: string; token?: string; json?: boolean }) => {
      const { runStatus } = await import('./cli/status.js');
      console.log(await runStatus(load(o.config).config, o));
    });

  program
    .command('query')
    .description('run one read-only SQL statement (SELECT/EXPLAIN) on the local store; works while the daemon runs')
    .argument('<sql>', 'e.g. "SELECT device, point, count(*) FROM readings GROUP BY ALL"')
    .addOption(configOption())
    .addOption(new Option('-f, --format <format>', 'output format').choices(['table', 'json', 'csv']).default('table'))
    .option('--max-rows <n>', 'row limit', (v) => Number.parseInt(v, 10), 1000)
    .option('--url <url>', 'gateway API base URL')
    .option('--token <token>', 'API token with the admin role')
    .action(
      async (sql: string, o: { config?: string; format: 'table' | 'json' | 'csv'; maxRows: number; url?: string; token?: string }) => {
        const { runQuery } = await import('./cli/query.js');
        console.log(await runQuery(load(o.config).config, sql, o));
      },
    );

  program
    .command('hash-password')
    .description('hash a device MQTT password for devices[].mqtt.passwordHash (reads stdin when no argument)')
    .argument('[password]', 'the password (prefer stdin: arguments end up in shell history)')
    .action(async (password?: string) => {
      const pw = password ?? (await readSecret('password: '));
      if (!pw) throw new Error('empty password');
      console.log(await hashPassword(pw));
    });

  const token = program.command('token').description('API tokens');
  token
    .command('create')
    .description('make a new API token; prints the token once and the config entry to add under http.tokens')
    .requiredOption('-n, --name <name>', 'who or what uses it')
    .addOption(new Option('-r, --role <role>', 'what it may do').choices([...ROLES]).default('viewer'))
    .action((o: { name: string; role: string }) => {
      const t = newApiToken();
      console.log(`token (shown once): ${t}\n\nadd to http.tokens:\n  - name: ${o.name}\n    role: ${o.role}\n    sha256: ${sha256Hex(t)}`);
    });

  program
    .command('enroll')
    .description("exchange a one-time enrollment token for this gateway's cloud credentials (written to the data dir, 0600)")
    .addOption(configOption())
    .requiredOption('--cloud <url>', 'cloud API base URL, e.g. https://cloud.example.com')
    .requiredOption('--token <token>', 'one-time enrollment token from the cloud (`outpost cloud-token`)')
    .option('--gateway-id <id>', "this gateway's id at the cloud (default: <site>-<hostname>)")
    .option('--name <name>', 'a display name')
    .option('--ca-file <file>', 'extra CA certificate (PEM) to trust')
    .option('--insecure', 'skip TLS certificate checks (testing only)')
    .action(
      async (o: {
        config?: string;
        cloud: string;
        token: string;
        gatewayId?: string;
        name?: string;
        caFile?: string;
        insecure?: boolean;
      }) => {
        const { runEnroll } = await import('./cli/sync.js');
        console.log(await runEnroll(load(o.config).config, o));
      },
    );

  const sync = program.command('sync').description('upstream sync');
  sync
    .command('status')
    .description("the running gateway's upload backlog per stream, circuit state, last success and last error")
    .addOption(configOption())
    .option('--url <url>', 'gateway API base URL (default: from the config, on loopback)')
    .option('--token <token>', 'API token (default: $OUTPOST_TOKEN or <dataDir>/admin.token)')
    .option('--json', 'print JSON')
    .action(async (o: { config?: string; url?: string; token?: string; json?: boolean }) => {
      const { runSyncStatus } = await import('./cli/sync.js');
      console.log(await runSyncStatus(load(o.config).config, o));
    });

  program
    .command('webhooks')
    .description('outbound webhooks')
    .command('dlq')
    .description('the dead-letter queue: list, retry <id> (send again with a fresh schedule), drop <id>')
    .addArgument(new Argument('<action>').choices(['list', 'retry', 'drop']))
    .argument('[id]', 'delivery id (webhook-id), for retry and drop')
    .addOption(configOption())
    .option('--endpoint <id>', 'list: only this endpoint')
    .option('--url <url>', 'gateway API base URL (default: from the config, on loopback)')
    .option('--token <token>', 'API token with the admin role (default: $OUTPOST_TOKEN or <dataDir>/admin.token)')
    .option('--json', 'print JSON')
    .action(
      async (
        action: 'list' | 'retry' | 'drop',
        id: string | undefined,
        o: { config?: string; endpoint?: string; url?: string; token?: string; json?: boolean },
      ) => {
        const { runDlq } = await import('./cli/webhooks.js');
        console.log(await runDlq(load(o.config).config, action, id, o));
      },
    );

  program
    .command('events')
    .description('stored events')
    .command('replay')
    .description('deliver stored events again, in order, to a webhook endpoint (even ones delivered before)')
    .requiredOption('--since <time>', 'ISO 8601, e.g. 2026-12-01T00:00:00Z')
    .option('--until <time>', 'ISO 8601 (default: now)')
    .option('--type <glob>', 'event type, e.g. alert.*')
    .option('--subject <id>', 'only this subject (device, lock, alert)')
    .requiredOption('--to <endpoint>', 'a webhooks.endpoints id')
    .addOption(configOption())
    .option('--url <url>', 'gateway API base URL (default: from the config, on loopback)')
    .option('--token <token>', 'API token with the admin role (default: $OUTPOST_TOKEN or <dataDir>/admin.token)')
    .action(
      async (o: {
        since: string;
        until?: string;
        type?: string;
        subject?: string;
        to: string;
        config?: string;
        url?: string;
        token?: string;
      }) => {
        const { apiCall, apiTarget } = await import('./cli/client.js');
        const body = {
          endpoint: o.to,
          since: o.since,
          ...(o.until ? { until: o.until } : {}),
          ...(o.type ? { type: o.type } : {}),
          ...(o.subject ? { subject: o.subject } : {}),
        };
        const r = await apiCall<{ events: number }>(apiTarget(load(o.config).config, o), '/api/v1/webhooks/replay', {
          method: 'POST',
          body,
        });
        console.log(`${r.events} events queued for delivery to ${o.to}`);
      },
    );

  // Each driver's own commands (outpost modbus plan, outpost discover cameras, ...).
  const discover = program.command('discover').description('find devices on the local network');
  for (const d of DRIVERS as readonly AnyDriverDescriptor[]) {
    d.cli?.(program, {
      configOption,
      discover,
      apiOptions: (cmd) =>
        cmd
          .addOption(configOption())
          .option('--url <url>', 'gateway API base URL (default: from the config, on loopback)')
          .option('--token <token>', 'API token (default: $OUTPOST_TOKEN or <dataDir>/admin.token)'),
      api: async (o, path, init) => {
        const { apiCall, apiTarget } = await import('./cli/client.js');
        return apiCall(apiTarget(load(o.config).config, o), path, init);
      },
      load: (path) => {
        const { config } = load(path);
        return { section: driverSection(d, config), site: siteView(d, config) };
      },
    });
  }

  // The cloud API gateways sync to (sync/cloud): `outpost cloud` and `outpost cloud-token`.
  registerCloudCommands(program);

  program
    .command('schema')
    .description('print the site config JSON Schema (for editors and CI)')
    .action(() => {
      process.stdout.write(schemaJson());
    });

  return program;
}

async function main(): Promise<void> {
  try {
    await buildProgram().parseAsync(process.argv);
  } catch (err) {
    if (err instanceof ConfigError) console.error(err.message);
    else console.error(`outpost: ${(err as Error).message}`);
    process.exitCode = 1;
  }
}

await main();
