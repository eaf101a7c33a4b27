// Schedule triggers. A rule with `when: { schedule: "0 7 * * 1-5" }` is run by the
// engine as an event rule for the internal event type `schedule` with the rule's id as
// subject; the host injects that event at each cron occurrence (site time zone, DST
// aware, checked on the 1 s tick, so it fires within a second of the time).
import { CronExpressionParser, type CronExpression } from 'cron-parser';
import type { OutpostEvent } from '../contract/types.js';
import type { RuleConfig } from '../../config/rules-schema.js';

const SCHEDULE_EVENT = 'schedule';

/** The rule as the engine sees it: schedule triggers become the internal event. */
export function engineRule(rule: RuleConfig): RuleConfig {
  if (rule.when.schedule === undefined) return rule;
  return { ...rule, when: { event: { type: SCHEDULE_EVENT, subject: rule.id } } };
}

export class Scheduler {
  private readonly entries: { rule: string; cron: CronExpression; next: number }[] = [];

  constructor(rules: readonly RuleConfig[], timezone: string, now = Date.now()) {
    for (const r of rules) {
      if (r.when.schedule === undefined || !r.enabled) continue;
      const cron = CronExpressionParser.parse(r.when.schedule, { tz: timezone, currentDate: new Date(now) });
      this.entries.push({ rule: r.id, cron, next: cron.next().getTime() });
    }
  }

  get size(): number {
    return this.entries.length;
  }

  /** Events for every occurrence due by `now` (one per rule at most: missed ones are skipped). */
  due(now: number, site: string): OutpostEvent[] {
    const out: OutpostEvent[] = [];
    for (const e of this.entries) {
      if (e.next > now) continue;
      out.push({ id: crypto.randomUUID(), ts: e.next, type: SCHEDULE_EVENT, source: `/outpost/${site}/rules`, subject: e.rule });
      while (e.next <= now) e.next = e.cron.next().getTime();
    }
    return out;
  }
}
