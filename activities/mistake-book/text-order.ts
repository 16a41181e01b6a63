/**
 * Compares strings by Unicode code point, the order Python's `str` comparison and UTF-8 bytes
 * use. JavaScript's `<` compares UTF-16 units, which puts characters above U+FFFF before
 * U+E000..U+FFFF; checks written in Python would then disagree on tie order.
 */
export function compareText(a: string, b: string): number {
  if (a === b) return 0;
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    const x = a.charCodeAt(i);
    const y = b.charCodeAt(i);
    if (x !== y) return codePointRank(x) - codePointRank(y);
  }
  return a.length - b.length;
}

/** Moves surrogates (U+D800..U+DFFF) above U+E000..U+FFFF so that unit order equals code point order. */
function codePointRank(unit: number): number {
  if (unit < 0xd800) return unit;
  return unit < 0xe000 ? unit + 0x2000 : unit - 0x800;
}
