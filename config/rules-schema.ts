// Rule language (site YAML `rules:`). Conditions are a structured tree, validated by the
// schema like every other key — there is no expression text to eval. A rule:
//
//   - id: server-room-hot
//     when: { reading: { device: "temp-*", point: temperature, zone: "server-*" } }
//                                 # or change: {device, point, from?, to?}, event: {type}, schedule: cron
//     if:
//       all:
//         - { value: { op: ">", value: 30 } }                        # the triggering value
//         - { avg: { window: 5m, op: ">", value: 29 } }               # over the trigger's series
//         - { time: { between: ["18:00", "06:00"], days: [mon, tue, wed, thu, fri] } }
//         - { point: { device: door-1, point: open, op: "==", value: true } }
//         - { not: { point: { device: hvac-1, point: running, op: "==", value: true } } }
//     for: 5m                   # must hold that long before firing
//     clear: { value: { op: "<", value: 28 } }   # hysteresis: re-arms only once this holds
//     cooldown: 10m
//     then:
//       - { alert: { severity: high, message: "Server room at {{value}} °C" } }
//       - { write: { device: hvac-1, point: ac_on, value: true } }
//       - { lock: { locks: [server-room], action: lock } }
//       - { publish: { topic: "site/alerts", payload: { rule: "{{rule}}" } } }
//       - { event: { type: custom.hot, data: { device: "{{device}}" } } }
import { CronExpressionParser } from 'cron-parser';
import { Type, type Static } from '@sinclair/typebox';
import { Id, Strict, StringEnum } from '../gateway/kernel/schema-kit.js';

const DURATION_PATTERN = '^[0-9]+(ms|s|m|h|d)$';
const Duration = (description: string) => Type.String({ pattern: DURATION_PATTERN, description });

const COMPARE_OPS = ['>', '>=', '<', '<=', '==', '!='] as const;
export type CompareOp = (typeof COMPARE_OPS)[number];

const Compare = Strict({
  op: StringEnum(COMPARE_OPS),
  value: Type.Union([Type.Number(), Type.Boolean(), Type.String()]),
});

export const AGGREGATES = ['avg', 'min', 'max', 'sum', 'count'] as const;
export type Aggregate = (typeof AGGREGATES)[number];

const Windowed = Strict({
  window: Duration('Sliding window, e.g. 5m'),
  op: StringEnum(COMPARE_OPS),
  value: Type.Number(),
  device: Type.Optional(Type.String({ description: 'Another series (default: the triggering reading)' })),
  point: Type.Optional(Type.String()),
});

// 00:00-23:59, or 24:00 for "end of day".
const HHMM = '^(([01][0-9]|2[0-3]):[0-5][0-9]|24:00)$';

export const DAYS = ['mon', 'tue', 'wed', 'thu', 'fri', 'sat', 'sun'] as const;
export type Day = (typeof DAYS)[number];

const TimeOfDay = Strict({
  between: Type.Optional(
    Type.Tuple([Type.String({ pattern: HHMM }), Type.String({ pattern: HHMM })], {
      description: '["HH:MM", "HH:MM"] in the site time zone; may wrap midnight',
    }),
  ),
  days: Type.Optional(Type.Array(StringEnum(DAYS), { minItems: 1 })),
});

const PointState = Strict({
  device: Type.String(),
  point: Type.String(),
  op: StringEnum(COMPARE_OPS),
  value: Type.Union([Type.Number(), Type.Boolean(), Type.String()]),
});

// Device filters: on a trigger, other devices do not evaluate the rule at all; as a condition, they test the triggering device.
const DeviceFilterProps = {
  zone: Type.Optional(Type.String({ description: 'Only devices in this zone (glob; from devices[].zone)' })),
  tags: Type.Optional(
    Type.Array(Type.String({ minLength: 1 }), { minItems: 1, description: 'Only devices carrying every one of these tags' }),
  ),
};
const Literal = Type.Union([Type.Number(), Type.Boolean(), Type.String()]);

const DeviceFilter = Strict(
  {
    id: Type.Optional(Type.String({ description: 'Device id glob' })),
    ...DeviceFilterProps,
  },
  { minProperties: 1, description: "The triggering device (an event's data.device, else its subject): id, zone and/or tags" },
);

const NoEvent = Strict({
  type: Type.String({ description: 'Event type (a trailing * matches a prefix)' }),
  within: Duration('How far back to look'),
  subject: Type.Optional(Type.String()),
});

// One key per condition object (exactly one of these), so a mistake gets one precise
// error instead of a complaint from every alternative. Recursive through all/any/not.
const ONE = { minProperties: 1, maxProperties: 1 };
export const ConditionSchema = Type.Recursive(
  (Cond) =>
    Strict(
      {
        value: Type.Optional(Compare),
        avg: Type.Optional(Windowed),
        min: Type.Optional(Windowed),
        max: Type.Optional(Windowed),
        sum: Type.Optional(Windowed),
        count: Type.Optional(Windowed),
        time: Type.Optional(TimeOfDay),
        point: Type.Optional(PointState),
        device: Type.Optional(DeviceFilter),
        none: Type.Optional(NoEvent),
        seen: Type.Optional(NoEvent),
        all: Type.Optional(Type.Array(Cond, { minItems: 1 })),
        any: Type.Optional(Type.Array(Cond, { minItems: 1 })),
        not: Type.Optional(Cond),
      },
      { ...ONE, description: 'exactly one of: value, avg, min, max, sum, count, time, point, device, none, seen, all, any, not' },
    ),
  { $id: 'RuleCondition' },
);
export type Condition = Static<typeof ConditionSchema>;
/** Where rules use a condition: a reference to the one definition in the site schema's $defs. */
const ConditionRef = Type.Unsafe<Condition>({ $ref: 'RuleCondition' });

export const SEVERITIES = ['critical', 'high', 'medium', 'low'] as const;
export type Severity = (typeof SEVERITIES)[number];

const Template = Type.String({
  description: 'Text; {{rule}}, {{device}}, {{point}}, {{value}}, {{previous}}, {{zone}}, {{type}}, {{subject}} are filled in',
});
const Json = Type.Unknown();

export const ActionSchema = Strict(
  {
    alert: Type.Optional(Strict({ severity: StringEnum(SEVERITIES), message: Template, key: Type.Optional(Template) })),
    write: Type.Optional(
      Strict({ device: Type.String(), point: Type.String(), value: Type.Union([Type.Number(), Type.Boolean(), Type.String()]) }),
    ),
    lock: Type.Optional(
      Strict({
        locks: Type.Optional(Type.Array(Type.String(), { minItems: 1 })),
        group: Type.Optional(Type.String()),
        action: StringEnum(['lock', 'unlock'] as const),
        seconds: Type.Optional(Type.Integer({ minimum: 0 })),
      }),
    ),
    publish: Type.Optional(Strict({ topic: Template, payload: Json, qos: Type.Optional(Type.Integer({ minimum: 0, maximum: 1 })) })),
    event: Type.Optional(Strict({ type: Type.String({ pattern: '^[a-z][a-z0-9_.-]*$' }), data: Type.Optional(Json) })),
    badge: Type.Optional(
      Strict({
        lock: Type.String({ description: 'The lock to open for an allowed credential' }),
        list: Type.String({ description: 'A key of the site allowLists' }),
        credential: Type.String({ default: '{{value}}', description: 'Templated; default: the triggering reading value' }),
        seconds: Type.Optional(Type.Integer({ minimum: 0 })),
      }),
    ),
    webhook: Type.Optional(
      Strict({
        url: Type.Optional(
          Type.String({ pattern: '^https?://', description: 'Templated; called once, a failure is recorded as rule.action_failed' }),
        ),
        endpoint: Type.Optional(
          Type.String({ description: 'A webhooks.endpoints id: the firing is delivered durably (signed, retried); give this or url' }),
        ),
        method: StringEnum(['POST', 'PUT'] as const, { default: 'POST' }),
        headers: Type.Optional(Type.Record(Type.String(), Type.String())),
        body: Type.Optional(Json),
        timeoutMs: Type.Integer({ minimum: 100, maximum: 60000, default: 5000 }),
      }),
    ),
  },
  { ...ONE, description: 'exactly one of: alert, write, lock, badge, publish, event, webhook' },
);
export type Action = Static<typeof ActionSchema>;

const Trigger = Strict(
  {
    reading: Type.Optional(Strict({ device: Type.String({ default: '*' }), point: Type.String({ default: '*' }), ...DeviceFilterProps })),
    change: Type.Optional(
      Strict(
        {
          device: Type.String({ default: '*' }),
          point: Type.String({ default: '*' }),
          from: Type.Optional(Literal),
          to: Type.Optional(Literal),
          ...DeviceFilterProps,
        },
        {
          description: 'A point changing value (optionally from one value and/or to another); the first reading of a point is not a change',
        },
      ),
    ),
    event: Type.Optional(Strict({ type: Type.String(), subject: Type.Optional(Type.String()), ...DeviceFilterProps })),
    schedule: Type.Optional(
      Type.String({ minLength: 9, description: 'cron expression (5 fields, or 6 with seconds) in the site time zone, e.g. "0 7 * * 1-5"' }),
    ),
  },
  { ...ONE, description: 'exactly one of: reading, change, event, schedule' },
);
export type RuleTrigger = Static<typeof Trigger>;

export const RuleSchema = Strict({
  id: Id('Rule id'),
  name: Type.Optional(Type.String()),
  enabled: Type.Boolean({ default: true }),
  when: Trigger,
  if: Type.Optional(ConditionRef),
  for: Type.Optional(Duration('The condition must hold this long before the rule fires')),
  clear: Type.Optional(ConditionRef),
  cooldown: Type.Optional(Duration('Minimum time between two firings')),
  then: Type.Array(ActionSchema, { minItems: 1 }),
});
export type RuleConfig = Static<typeof RuleSchema>;

/** `5m` → 300000. Validated by DURATION_PATTERN first. */
export function durationMs(d: string): number {
  const m = /^([0-9]+)(ms|s|m|h|d)$/.exec(d);
  if (!m) throw new Error(`"${d}" is not a duration like 30s, 5m, 2h`);
  const unit = { ms: 1, s: 1e3, m: 6e4, h: 3.6e6, d: 8.64e7 }[m[2] as 'ms' | 's' | 'm' | 'h' | 'd'];
  return Number(m[1]) * unit;
}

/** Why a cron expression is invalid, or null. */
export function cronError(expr: string, timezone: string): string | null {
  try {
    CronExpressionParser.parse(expr, { tz: timezone });
    return null;
  } catch (err) {
    return (err as Error).message;
  }
}
