/**
 * Splits Python source into simple statements the way the tokenizer does, without parsing them:
 * a statement ends at a newline outside brackets and strings or at a top-level `;`; a newline
 * inside (), [] or {} or after a backslash continues it; comments are dropped. This is only
 * about where a statement starts and ends. What a statement means (call, expected value) is
 * decided by Python's own `ast` in the sandbox.
 *
 * Each statement comes back with its first line's indentation removed, comment text removed
 * and trailing blanks trimmed; lines inside brackets keep their layout, which Python accepts.
 */
export function splitStatements(source: string): string[] {
  const statements: string[] = [];
  const text = source.replace(/\r\n?/g, '\n');
  let current = '';
  let depth = 0;
  let quote: string | null = null;

  const finish = () => {
    const statement = current.replace(/[ \t]+\n/g, '\n').trim();
    if (statement !== '') statements.push(statement);
    current = '';
    depth = 0;
  };

  for (let i = 0; i < text.length; i++) {
    const ch = text[i]!;
    if (quote !== null) {
      if (ch === '\\' && i + 1 < text.length) {
        current += ch + text[i + 1];
        i++;
      } else if (text.startsWith(quote, i)) {
        current += quote;
        i += quote.length - 1;
        quote = null;
      } else if (ch === '\n' && quote.length === 1) {
        // An unterminated one-line string: Python rejects the statement. End it here, brackets
        // and all, so one broken line does not swallow the asserts after it.
        quote = null;
        finish();
      } else {
        current += ch;
      }
      continue;
    }
    switch (ch) {
      case '#':
        while (i + 1 < text.length && text[i + 1] !== '\n') i++;
        break;
      case '"':
      case "'":
        quote = text.startsWith(ch.repeat(3), i) ? ch.repeat(3) : ch;
        current += quote;
        i += quote.length - 1;
        break;
      case '(':
      case '[':
      case '{':
        depth++;
        current += ch;
        break;
      case ')':
      case ']':
      case '}':
        depth = Math.max(0, depth - 1);
        current += ch;
        break;
      case '\\':
        if (text[i + 1] === '\n') {
          current += '\\\n';
          i++;
        } else {
          current += ch;
        }
        break;
      case '\n':
        if (depth > 0) current += ch;
        else finish();
        break;
      case ';':
        if (depth > 0) current += ch;
        else finish();
        break;
      default:
        current += ch;
    }
  }
  finish();
  return statements;
}
