/**
 * Locating and reading test fixtures (test/fixtures/...) from compiled tests.
 *
 * Tests run from build/test/ (compiled by tsconfig.test.json), so paths are resolved from the
 * repository root, found by walking up from this module (build/test/helpers/) and, failing that,
 * from the working directory, to the first folder holding both package.json and test/fixtures.
 * MIXPREC_FIXTURES_DIR overrides the fixtures folder. Binary fixtures are little-endian.
 */
import { existsSync, readFileSync } from 'node:fs';
import { endianness } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

function findUp(start: string): string | null {
  let dir = resolve(start);
  for (;;) {
    if (existsSync(join(dir, 'package.json')) && existsSync(join(dir, 'test', 'fixtures'))) return dir;
    const parent = dirname(dir);
    if (parent === dir) return null;
    dir = parent;
  }
}

let cachedDir: string | undefined;

/** Absolute path of the test/fixtures folder. */
export function fixturesDir(): string {
  if (cachedDir !== undefined) return cachedDir;
  const override = process.env['MIXPREC_FIXTURES_DIR'];
  if (override) return (cachedDir = resolve(override));
  const root = findUp(dirname(fileURLToPath(import.meta.url))) ?? findUp(process.cwd());
  if (!root) throw new Error('fixtures: no folder with package.json and test/fixtures above this module or the working directory');
  return (cachedDir = join(root, 'test', 'fixtures'));
}

/** Absolute path of a fixture, e.g. fixturePath('dtype', 'f16_to_f32.bin'). */
export function fixturePath(...parts: string[]): string {
  return join(fixturesDir(), ...parts);
}

/** The raw bytes of a fixture in a fresh, aligned ArrayBuffer. */
export function readFixtureBytes(...parts: string[]): ArrayBuffer {
  const buf = readFileSync(fixturePath(...parts));
  const out = new ArrayBuffer(buf.byteLength);
  new Uint8Array(out).set(buf);
  return out;
}

function checkWidth(parts: string[], bytes: number, width: number): void {
  if (bytes % width !== 0) throw new Error(`fixture ${parts.join('/')}: ${bytes} bytes is not a multiple of ${width}`);
}

/** A fixture of little-endian uint16 values. */
export function readU16(...parts: string[]): Uint16Array {
  const bytes = readFixtureBytes(...parts);
  checkWidth(parts, bytes.byteLength, 2);
  if (endianness() === 'LE') return new Uint16Array(bytes);
  const view = new DataView(bytes);
  return Uint16Array.from({ length: bytes.byteLength / 2 }, (_, i) => view.getUint16(2 * i, true));
}

/** A fixture of little-endian uint32 values. */
export function readU32(...parts: string[]): Uint32Array {
  const bytes = readFixtureBytes(...parts);
  checkWidth(parts, bytes.byteLength, 4);
  if (endianness() === 'LE') return new Uint32Array(bytes);
  const view = new DataView(bytes);
  return Uint32Array.from({ length: bytes.byteLength / 4 }, (_, i) => view.getUint32(4 * i, true));
}

/** A JSON fixture, parsed (the type is the caller's claim, not checked). */
export function readJson<T>(...parts: string[]): T {
  return JSON.parse(readFileSync(fixturePath(...parts), 'utf8')) as T;
}
