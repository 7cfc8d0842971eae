/**
 * Fault injection for the crash-safety tests (test/crash_safety.test.ts), read from the environment
 * variable MIXPREC_TEST_FAULTS, a comma-separated list; unset (always, outside those tests), nothing
 * changes:
 * - `checkpoint-write-delay=MS`: every chunk of a checkpoint write waits MS ms first, a slow disk, so
 *   that a kill or a Ctrl-C lands inside the write; each chunk is announced on stderr as
 *   `fault: writing chunk N of PATH`;
 * - `checkpoint-enospc=N`: the N-th checkpoint save of the run fails at its first chunk with ENOSPC,
 *   as a full disk does.
 */
import type { AtomicWriteOptions } from '../io/checkpoint.js';

export function checkpointFaults(env = process.env): AtomicWriteOptions {
  const spec = env['MIXPREC_TEST_FAULTS'];
  if (!spec) return {};
  const faults = new Map(spec.split(',').map((f) => f.split('=') as [string, string | undefined]));
  const delay = Number(faults.get('checkpoint-write-delay') ?? 0);
  const enospcAt = Number(faults.get('checkpoint-enospc') ?? 0);
  let saves = 0;
  return {
    faultInjection: async (stage, { tmpPath, chunk }) => {
      if (stage === 'open') saves++;
      if (stage !== 'write') return;
      if (enospcAt && saves === enospcAt && chunk === 0) {
        throw Object.assign(new Error(`ENOSPC: no space left on device, write (injected by MIXPREC_TEST_FAULTS)`), { code: 'ENOSPC', errno: -28, syscall: 'write' });
      }
      if (delay > 0) {
        process.stderr.write(`fault: writing chunk ${chunk} of ${tmpPath}\n`);
        await new Promise((resolve) => setTimeout(resolve, delay));
      }
    },
  };
}
