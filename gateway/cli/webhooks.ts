// `outpost webhooks dlq list|retry <id>|drop <id>`: the running gateway's dead-letter
// queue of webhook deliveries, through the local API (admin token).
import type { SiteConfig } from '../../config/schema.js';
import type { Delivery } from '../webhooks/store.js';
import { apiCall, apiTarget } from './client.js';

type Opts = { url?: string; token?: string; json?: boolean; endpoint?: string };

export async function runDlq(config: SiteConfig, action: 'list' | 'retry' | 'drop', id: string | undefined, o: Opts): Promise<string> {
  const target = apiTarget(config, o);
  if (action !== 'list') {
    if (!id) throw new Error(`webhooks dlq ${action} needs a delivery id`);
    const path = `/api/v1/webhooks/dlq/${encodeURIComponent(id)}`;
    if (action === 'retry') {
      await apiCall(target, `${path}/retry`, { method: 'POST' });
      return `delivery ${id} is pending again (fresh retry schedule)`;
    }
    await apiCall(target, path, { method: 'DELETE' });
    return `delivery ${id} dropped`;
  }
  const q = o.endpoint ? `?endpoint=${encodeURIComponent(o.endpoint)}` : '';
  const { deliveries } = await apiCall<{ deliveries: Delivery[] }>(target, `/api/v1/webhooks/dlq${q}`);
  if (o.json) return JSON.stringify(deliveries, null, 2);
  if (deliveries.length === 0) return 'the dead-letter queue is empty';
  return deliveries
    .map(
      (d) =>
        `${d.id}  ${d.endpoint}  event ${d.eventId}${d.subject ? ` subject ${d.subject}` : ''}  ${d.attempts} attempts  ${new Date(d.createdAt).toISOString()}  ${d.lastError ?? ''}`,
    )
    .join('\n');
}
