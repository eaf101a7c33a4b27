// The packet forwarders this site knows: which may send (EUI allow-list), where each
// one pulls downlinks from (the address of its last PULL_DATA), its last statistics, and
// whether it is online (heard within gatewayOfflineAfterS).
import type { GatewayStat } from './gwmp.js';

export interface GatewayState {
  eui: string;
  /** Device id its health readings and events use: the configured name, else the EUI. */
  id: string;
  configured: boolean;
  lastSeen: number | null;
  /** Where PULL_RESP goes: the source of its last PULL_DATA. */
  pull: { address: string; port: number; version: number; at: number } | null;
  stat: GatewayStat | null;
  online: boolean;
  uplinks: number;
  downlinks: number;
}

export interface GatewayView {
  eui: string;
  id: string;
  online: boolean;
  lastSeen: string | null;
  lastPull: string | null;
  uplinks: number;
  downlinks: number;
  stat: GatewayStat | null;
}

export class GatewayRegistry {
  private readonly byEui = new Map<string, GatewayState>();

  constructor(
    configured: readonly { eui: string; name?: string }[],
    private readonly allowUnknown: boolean,
    private readonly offlineAfterMs: number,
  ) {
    for (const g of configured) {
      const eui = g.eui.toLowerCase();
      this.byEui.set(eui, blank(eui, g.name ?? eui, true));
    }
  }

  /** The state of an allowed gateway (created on first contact when unknown ones are allowed), else null. */
  admit(eui: string): GatewayState | null {
    const known = this.byEui.get(eui);
    if (known) return known;
    if (!this.allowUnknown) return null;
    const g = blank(eui, eui, false);
    this.byEui.set(eui, g);
    return g;
  }

  get(eui: string): GatewayState | undefined {
    return this.byEui.get(eui);
  }

  /** Marks a gateway heard; true when it was offline before (it came back). */
  heard(g: GatewayState, now: number): boolean {
    g.lastSeen = now;
    if (g.online) return false;
    g.online = true;
    return true;
  }

  /** Gateways silent past the limit, now marked offline. */
  sweep(now: number): GatewayState[] {
    const gone: GatewayState[] = [];
    for (const g of this.byEui.values()) {
      if (g.online && g.lastSeen !== null && now - g.lastSeen > this.offlineAfterMs) {
        g.online = false;
        gone.push(g);
      }
    }
    return gone;
  }

  get onlineCount(): number {
    let n = 0;
    for (const g of this.byEui.values()) if (g.online) n++;
    return n;
  }

  list(): GatewayView[] {
    const iso = (t: number | null | undefined) => (t ? new Date(t).toISOString() : null);
    return [...this.byEui.values()].map((g) => ({
      eui: g.eui,
      id: g.id,
      online: g.online,
      lastSeen: iso(g.lastSeen),
      lastPull: iso(g.pull?.at),
      uplinks: g.uplinks,
      downlinks: g.downlinks,
      stat: g.stat,
    }));
  }
}

function blank(eui: string, id: string, configured: boolean): GatewayState {
  return { eui, id, configured, lastSeen: null, pull: null, stat: null, online: false, uplinks: 0, downlinks: 0 };
}
