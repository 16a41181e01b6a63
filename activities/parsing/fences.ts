/**
 * Fenced blocks of a Markdown answer, found the way CommonMark finds them: an opening line of
 * three or more backticks or tildes with an optional info string, closed by a line of the same
 * character at least as long. Anything looser (fences mid-line) would also match the inside of
 * Python strings and docstrings, which models write often enough to matter.
 */
export interface FencedBlock {
  /** First word of the info string, lower-cased; '' for an untagged fence. */
  lang: string;
  code: string;
  /** False when the answer ended inside the block (typically cut at max tokens). */
  closed: boolean;
}

const opening = /^([ \t]*)(`{3,}|~{3,})[ \t]*([^\s`]*)[^`]*$/;
const closing = /^[ \t]*(`{3,}|~{3,})[ \t]*$/;

const pythonTags = new Set(['python', 'py', 'python3', 'py3']);

export function isPythonTag(lang: string): boolean {
  return pythonTags.has(lang);
}

/**
 * Reasoning models put drafts inside <think>…</think>; only what follows the last closing tag
 * is the answer. Without a closing tag the whole text is the answer.
 */
export function answerPart(text: string): string {
  const end = text.lastIndexOf('</think>');
  return end === -1 ? text : text.slice(end + '</think>'.length);
}

export function findFencedBlocks(text: string): FencedBlock[] {
  const lines = text.split(/\r\n|\r|\n/);
  const blocks: FencedBlock[] = [];
  for (let i = 0; i < lines.length; i++) {
    const open = opening.exec(lines[i]!);
    if (!open) continue;
    const indent = open[1]!.length;
    const fence = open[2]!;
    const body: string[] = [];
    let closed = false;
    for (i++; i < lines.length; i++) {
      const close = closing.exec(lines[i]!);
      if (close && close[1]![0] === fence[0] && close[1]!.length >= fence.length) {
        closed = true;
        break;
      }
      body.push(dedent(lines[i]!, indent));
    }
    blocks.push({ lang: open[3]!.toLowerCase(), code: body.join('\n'), closed });
  }
  return blocks;
}

/** A fence indented inside a list item indents its content too; strip up to that much. */
function dedent(line: string, width: number): string {
  let cut = 0;
  while (cut < width && (line[cut] === ' ' || line[cut] === '\t')) cut++;
  return line.slice(cut);
}

/** Python-tagged blocks when there are any, otherwise untagged ones; other languages never count. */
export function pythonBlocks(text: string): FencedBlock[] {
  const blocks = findFencedBlocks(answerPart(text));
  const tagged = blocks.filter((b) => isPythonTag(b.lang));
  return tagged.length > 0 ? tagged : blocks.filter((b) => b.lang === '');
}
