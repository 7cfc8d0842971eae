// What the side-by-side benchmark scripts (peers.mjs, gpt-peers.mjs, resnet-peers.mjs, warmup.mjs) share: where
// the CLI and Debian's python are, their flag reading and --help (the script's leading comment), the
// load average, running one side and reading its last JSON line, and PyTorch's environment. The
// Python peers share bench/peer_common.py (the allocator warmed, the best thread count).
import { spawnSync } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { loadavg } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

export const root = dirname(dirname(fileURLToPath(import.meta.url)));
export const CLI = join(root, "dist", "cli", "main.js");
export const PYTHON = "/usr/bin/python3";

/**
 * The script's flags: `opt(name, dflt)` reads `--name VALUE`, `flag(name)` tests `--name`. --help or
 * -h prints the script's `//` comment lines and exits.
 */
export function scriptArgs(scriptUrl, argv = process.argv.slice(2)) {
  if (argv.includes("--help") || argv.includes("-h")) {
    const src = readFileSync(fileURLToPath(scriptUrl), "utf8");
    process.stdout.write(src.split("\n").filter((l) => l.startsWith("//")).map((l) => l.slice(3)).join("\n") + "\n");
    process.exit(0);
  }
  const opt = (name, dflt) => {
    const i = argv.indexOf(`--${name}`);
    return i >= 0 && argv[i + 1] !== undefined ? argv[i + 1] : dflt;
  };
  return { argv, opt, flag: (name) => argv.includes(`--${name}`) };
}

/** Exit 2 with one line unless `npm run build` has made the CLI. */
export function requireBuiltCli(script) {
  if (!existsSync(CLI)) {
    console.error(`${script}: ${CLI} not found: run npm run build first`);
    process.exit(2);
  }
}

export const load = () => Number(loadavg()[0].toFixed(2));

/** Run one side (announced on stderr with the load) and return the last JSON line it printed. */
export function runJson(cmd, args, env, label, timeoutMinutes) {
  process.stderr.write(`$ ${label}   (load ${load()})\n`);
  const r = spawnSync(cmd, args, { cwd: root, env, encoding: "utf8", maxBuffer: 64 << 20, timeout: timeoutMinutes * 60_000 });
  if (r.status !== 0) throw new Error(`${label} failed (exit ${r.status ?? r.signal}): ${(r.stderr || r.stdout || "").trim().split("\n").slice(-3).join(" | ")}`);
  const lines = r.stdout.trim().split("\n").filter((l) => l.startsWith("{"));
  if (lines.length === 0) throw new Error(`${label} printed no JSON`);
  return JSON.parse(lines[lines.length - 1]);
}

/** PyTorch at its best here: OpenBLAS picks its own core type and cache size (both unset). */
export function torchEnv() {
  const env = { ...process.env };
  for (const k of ["OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE"]) delete env[k];
  return env;
}
