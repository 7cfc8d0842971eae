/** Flag parsing with Node's util.parseArgs (strict: unknown flags are errors) and value checks. */
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { usage } from './errors.js';
import { listBackends } from '../backend/registry.js';

export type Options = NonNullable<ParseArgsConfig['options']>;

/** Parse `argv` for `command`, turning parseArgs' errors into one-line usage errors. */
export function parseFlags(command: string, argv: string[], options: Options): Record<string, string | boolean | undefined> {
  const { values, positionals } = parseFlagsAndArguments(command, argv, options);
  if (positionals.length > 0) throw usage(`mixprec ${command}: unexpected argument '${positionals[0]}' (flags start with --; see mixprec ${command} --help)`);
  return values as Record<string, string | boolean | undefined>;
}

/** parseFlags for commands that also take arguments (file names); `multiple` flags give arrays. */
export function parseFlagsAndArguments(command: string, argv: string[], options: Options): { values: Record<string, string | boolean | string[] | undefined>; positionals: string[] } {
  try {
    const { values, positionals } = parseArgs({ args: argv, options, strict: true, allowPositionals: true });
    return { values: values as Record<string, string | boolean | string[] | undefined>, positionals };
  } catch (e) {
    if ((e as { code?: string }).code?.startsWith('ERR_PARSE_ARGS')) {
      throw usage(`mixprec ${command}: ${(e as Error).message.split('\n')[0]!.replace(/\. To specify a positional.*$/, '')} (see mixprec ${command} --help)`);
    }
    throw e;
  }
}

export function choice<T extends string>(command: string, flag: string, value: string | boolean | undefined, allowed: readonly T[], fallback: T): T {
  if (value === undefined) return fallback;
  if (typeof value !== 'string' || !allowed.includes(value as T)) {
    throw usage(`mixprec ${command}: --${flag} must be one of ${allowed.join(', ')} (got '${String(value)}')`);
  }
  return value as T;
}

export function number(
  command: string,
  flag: string,
  value: string | boolean | undefined,
  fallback: number,
  check: { integer?: boolean; min?: number; exclusiveMin?: number } = {},
): number {
  if (value === undefined) return fallback;
  const n = typeof value === 'string' && value.trim() !== '' ? Number(value) : NaN;
  const ok =
    Number.isFinite(n) &&
    (!check.integer || Number.isInteger(n)) &&
    (check.min === undefined || n >= check.min) &&
    (check.exclusiveMin === undefined || n > check.exclusiveMin);
  if (!ok) {
    const what = [check.integer ? 'an integer' : 'a number', check.min !== undefined ? `>= ${check.min}` : '', check.exclusiveMin !== undefined ? `> ${check.exclusiveMin}` : '']
      .filter(Boolean)
      .join(' ');
    throw usage(`mixprec ${command}: --${flag} must be ${what} (got '${String(value)}')`);
  }
  return n;
}

/**
 * Copy the string flags that were given (paths, names) into `target` under their keys: `pairs` of
 * [flag, key]. An empty value is a usage error.
 */
export function copyStringFlags<T extends object>(
  command: string,
  values: Record<string, string | boolean | undefined>,
  target: T,
  pairs: readonly (readonly [string, keyof T & string])[],
): void {
  for (const [flag, key] of pairs) {
    const value = values[flag];
    if (value === undefined) continue;
    if (value === '') throw usage(`mixprec ${command}: --${flag} needs a value`);
    (target as Record<string, unknown>)[key] = value;
  }
}

/** A usage error unless `backend` is absent or a registered backend's name. */
export function checkBackendFlag(command: string, backend: string | undefined): void {
  if (backend !== undefined && !listBackends().includes(backend)) {
    throw usage(`mixprec ${command}: --backend must be one of ${listBackends().join(', ')} (got '${backend}')`);
  }
}
