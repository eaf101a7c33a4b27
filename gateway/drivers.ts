// How the gateway reaches drivers: only through the registry (drivers/index.ts). Builds
// the enabled ones, mounts their routes, and collects the secret files they name.
import type { FastifyInstance } from 'fastify';
import type { SiteConfig } from '../config/schema.js';
import { driverSection, siteView } from '../config/views.js';
import { DRIVERS } from '../drivers/index.js';
import type { AnyDriverDescriptor } from './contract/descriptor.js';
import type { Driver } from './contract/driver.js';
import type { SecretFile } from './kernel/secret-files.js';

const REGISTRY: readonly AnyDriverDescriptor[] = DRIVERS;

/** The enabled drivers, built (and their modules loaded) in registry order. */
export async function createDrivers(config: SiteConfig): Promise<Driver[]> {
  const enabled = REGISTRY.filter((d) => d.enabled(driverSection(d, config)));
  return Promise.all(enabled.map((d) => d.create(driverSection(d, config), siteView(d, config))));
}

/** Each driver's own API routes; `running(name)` is the driver while it runs. */
export function registerDriverRoutes(app: FastifyInstance, running: (name: string) => Driver | undefined): void {
  for (const d of REGISTRY) d.routes?.(app, () => running(d.name));
}

/** Secret files the drivers' sections name, and the device keys that hold secrets inline. */
export function driverSecrets(config: SiteConfig): { files: SecretFile[]; inline: string[] } {
  const files: SecretFile[] = [];
  const inline: string[] = [];
  for (const d of REGISTRY) {
    files.push(...(d.secretFiles?.(driverSection(d, config)) ?? []));
    for (const dev of siteView(d, config).devices) {
      for (const key of d.inlineSecrets?.(dev.config) ?? []) inline.push(`devices[${dev.index}].${d.name}.${key}`);
      files.push(...(d.deviceSecretFiles?.(dev.config) ?? []).map((f) => ({ ...f, what: `${f.what} (devices[${dev.index}])` })));
    }
  }
  return { files, inline };
}
