// What a driver is given of the site config: its own section and the devices that have
// its per-device section (gateway/contract/descriptor.ts). Built in one place for the
// gateway (create), the config checks and the CLI.
import type { AnyDriverDescriptor, CheckView, DeviceView, SiteView } from '../gateway/contract/descriptor.js';
import type { SiteConfig } from './schema.js';

type Sections = Record<string, unknown>;

/** drivers.<name> of a validated config (defaults filled in). */
export function driverSection(d: AnyDriverDescriptor, config: SiteConfig): unknown {
  return (config.drivers as Sections)[d.name];
}

export function siteView(d: AnyDriverDescriptor, config: SiteConfig): SiteView<unknown> {
  const devices: DeviceView<unknown>[] = [];
  config.devices.forEach((dev, index) => {
    const section = (dev as unknown as Sections)[d.name];
    if (d.device === undefined || section === undefined) return;
    devices.push({
      index,
      id: dev.id,
      zone: dev.zone,
      ...(dev.name !== undefined ? { name: dev.name } : {}),
      tags: dev.tags,
      config: section,
    });
  });
  return { id: config.site, dataDir: config.dataDir, timezone: config.timezone, devices, deviceIds: config.devices.map((dev) => dev.id) };
}

export function checkView(d: AnyDriverDescriptor, config: SiteConfig): CheckView<unknown> {
  return { ...siteView(d, config), maxQueueRows: config.store.maxQueueRows };
}

/** The drivers a device has a section for, each with that section. */
export function driversOfDevice(
  drivers: readonly AnyDriverDescriptor[],
  device: SiteConfig['devices'][number],
): { driver: AnyDriverDescriptor; section: unknown }[] {
  return drivers.flatMap((driver) => {
    const section = driver.device === undefined ? undefined : (device as unknown as Sections)[driver.name];
    return section === undefined ? [] : [{ driver, section }];
  });
}
