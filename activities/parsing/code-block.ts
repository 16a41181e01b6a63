import { pythonBlocks } from './fences.js';

export interface ExtractCodeOptions {
  /** Function the problem asks for; blocks defining it are preferred. */
  entryPoint?: string;
}

const anyDefinition = /^[ \t]*(?:async[ \t]+)?(?:def|class)[ \t]/m;

function definesEntryPoint(code: string, name: string): boolean {
  const escaped = name.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  return new RegExp(`^[ \\t]*(?:async[ \\t]+)?def[ \\t]+${escaped}[ \\t]*\\(`, 'm').test(code);
}

/**
 * The solution code of a Code LLM answer, or null when it holds no usable fenced block.
 *
 * The prompt asks for one python block, but answers often carry several: a draft followed by
 * "a corrected version", or the solution followed by a usage example. So the choice is:
 * 1. python-tagged blocks (`python`, `py`, `python3`), or untagged ones when none is tagged;
 *    `bash`, `text` and friends are never code;
 * 2. among those, the blocks that define the entry point, else the ones that define any
 *    function or class, else all of them (a usage example defines nothing, a solution does);
 * 3. the last of what remains, because a later definition is the model's revision of an
 *    earlier one.
 * An unclosed fence (answer cut at max tokens) still yields its content: whether it defines
 * the function is for the sandbox to decide, not for the parser to guess.
 * No fence at all gives null rather than treating prose as code.
 */
export function extractCode(answer: string, options: ExtractCodeOptions = {}): string | null {
  const blocks = pythonBlocks(answer).filter((b) => b.code.trim() !== '');
  const tiers = [
    options.entryPoint ? blocks.filter((b) => definesEntryPoint(b.code, options.entryPoint!)) : [],
    blocks.filter((b) => anyDefinition.test(b.code)),
    blocks,
  ];
  const chosen = tiers.find((tier) => tier.length > 0)?.at(-1);
  return chosen ? chosen.code.replace(/\s+$/, '') + '\n' : null;
}
