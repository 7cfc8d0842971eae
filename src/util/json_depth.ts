/**
 * How deeply a JSON text nests, found by one scan without parsing: readers refuse nesting deeper than
 * their format has before JSON.parse builds it (a 2-byte `[]` becomes a whole array object, so
 * `[[[[...` would turn a file into tens of times its size in memory, and walking it recursively
 * would overflow the stack).
 */

/** The deepest nesting of arrays and objects in `text`, counting stops once it passes `limit`. */
export function jsonDepth(text: string, limit = Infinity): number {
  let depth = 0;
  let deepest = 0;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (inString) {
      if (c === 0x5c) i++; // backslash: skip the escaped character
      else if (c === 0x22) inString = false;
    } else if (c === 0x22) inString = true;
    else if (c === 0x5b || c === 0x7b) {
      if (++depth > deepest && (deepest = depth) > limit) return deepest;
    } else if (c === 0x5d || c === 0x7d) depth--;
  }
  return deepest;
}
