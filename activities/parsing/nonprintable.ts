/**
 * Characters that render as nothing or garbage: Unicode control (Cc), format (Cf, e.g.
 * zero-width space, byte-order mark), surrogate (Cs, a lone half of a pair), private use (Co),
 * unassigned (Cn), and the line/paragraph separators (Zl, Zp). This is Python's
 * `str.isprintable()` minus its treatment of spaces: ordinary spaces and non-Latin text are
 * printable, so a test written with Chinese comments is not penalised.
 */
const nonprintable = /[\p{Cc}\p{Cf}\p{Cs}\p{Co}\p{Cn}\p{Zl}\p{Zp}]/u;
const layout = new Set(['\n', '\t', '\r']);

/**
 * Share of a response's characters (Unicode code points, not UTF-16 units) that are not
 * printable, with \n, \t and \r counted as printable since every answer uses them for layout.
 * An empty response has ratio 0. The Test LLM reward subtracts this (docs/code-a1.md §6).
 */
export function nonprintableRatio(text: string): number {
  let total = 0;
  let bad = 0;
  for (const ch of text) {
    total++;
    if (!layout.has(ch) && nonprintable.test(ch)) bad++;
  }
  return total === 0 ? 0 : bad / total;
}
