/**
 * The one error type of mixprec's file readers (safetensors, checkpoints, CIFAR-10, MNIST, image
 * folders, text corpora): a file that is missing, unreadable, or not what the reader expects.
 * `file` names the file; the message is one line that names it and says what was wrong and what was
 * expected. Readers never let another error type escape for a bad file (test/fuzz_readers.test.ts
 * checks that against mutated files).
 */

/** Longest message kept: values quoted from a corrupt file must not turn an error into megabytes. */
const MAX_MESSAGE = 2000;

export class FileError extends Error {
  override name = 'FileError';
  /**
   * `message` should name `file`; when it does not, `file: ` is put in front. Line breaks and other
   * control characters (from names or values read out of the file) are escaped, so it stays one line.
   */
  constructor(
    readonly file: string,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(oneLine(message.includes(file) ? message : `${file}: ${message}`), options);
  }
}

/** Escape control characters and cut to MAX_MESSAGE characters (the start, which names the file). */
export function oneLine(text: string): string {
  // eslint-disable-next-line no-control-regex
  const line = text.replace(/[\u0000-\u001f\u007f\u2028\u2029]/g, (c) => JSON.stringify(c).slice(1, -1));
  return line.length <= MAX_MESSAGE ? line : `${line.slice(0, MAX_MESSAGE - 30)}... (${line.length - MAX_MESSAGE + 30} more characters)`;
}

/**
 * A value read from a file, quoted for an error message: JSON text cut to `max` characters. Never
 * throws (a cycle or a nesting too deep for JSON.stringify is described instead).
 */
export function quote(value: unknown, max = 80): string {
  let text: string;
  try {
    text = typeof value === 'string' ? JSON.stringify(value) : (JSON.stringify(value) ?? String(value));
  } catch {
    text = Array.isArray(value) ? '[...] (nested too deeply to show)' : '{...} (nested too deeply to show)';
  }
  return text.length <= max ? text : `${text.slice(0, max)}... (${text.length} characters)`;
}

/** A name read from a file (a tensor's, a member's), in single quotes for a message, escaped and cut. */
export function quoteName(name: string, max = 60): string {
  const inner = JSON.stringify(name).slice(1, -1);
  return inner.length <= max ? `'${inner}'` : `'${inner.slice(0, max)}...' (${name.length} characters)`;
}

/**
 * The FileError for a failed open/read/stat of `file`: missing, a folder, no permission, too large
 * for one read; `what` says what the file should have been ("checkpoint", "text corpus").
 */
export function fileSystemError(file: string, e: unknown, what: string): FileError {
  const code = (e as NodeJS.ErrnoException | undefined)?.code;
  const why =
    code === 'ENOENT' ? 'does not exist'
      : code === 'EISDIR' ? 'is a folder'
        : code === 'EACCES' || code === 'EPERM' ? 'cannot be read (permission denied)'
          : code === 'ERR_FS_FILE_TOO_LARGE' ? 'is too large to read at once (over 2 GiB)'
            : `cannot be read (${(e as Error)?.message ?? String(e)})`;
  return new FileError(file, `${file} ${why}; expected a ${what}`, { cause: e });
}
