// Small builders shared by every config schema (the site's and each driver's).
import { Type, type ObjectOptions, type Static, type TProperties } from '@sinclair/typebox';

/** An object schema that rejects unknown keys (typos are the installer's most common bug). */
export const Strict = <T extends TProperties>(props: T, opts: ObjectOptions = {}) =>
  Type.Object(props, { additionalProperties: false, ...opts });

/** A strict object that may be omitted entirely; its own defaults still apply. */
export const Section = <T extends TProperties>(props: T, description: string) => Strict(props, { default: {}, description });

/** A string enum as `enum` (not anyOf-of-const) so a bad value gives one clear error. */
export const StringEnum = <T extends string>(values: readonly T[], opts: Record<string, unknown> = {}) =>
  Type.Unsafe<T>({ type: 'string', enum: values, ...opts });

export const Id = (description: string) => Type.String({ pattern: '^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$', description });

export const ROLES = ['admin', 'operator', 'viewer'] as const;
export const Role = StringEnum(ROLES);
export type Role = Static<typeof Role>;

/** A TCP/UDP port (0 picks a free one). */
export const Port = (dflt: number, description: string) => Type.Integer({ minimum: 0, maximum: 65535, default: dflt, description });
