import { answerPart, pythonBlocks } from './fences.js';
import { splitStatements } from './python-statements.js';

const assertKeyword = /^assert(?![A-Za-z0-9_])/;

/**
 * The assert statements of a Test LLM answer, in order, before any validation.
 *
 * Source text: every python-tagged block (or every untagged one when none is tagged), in order.
 * The prompt asks for a single block; a model that splits its tests over two blocks still wrote
 * all of them, and "only the first T count" is applied later, by position. An answer without any
 * fence is scanned whole, so a missing fence costs nothing extra while prose, which does not
 * start a statement with the `assert` keyword, still yields nothing.
 *
 * Asserts indented under a `def test_…():` or similar are taken too (dedented); those that use
 * names local to that block fail on the oracle and count as invalid there. Statements that span
 * lines through brackets or backslashes are kept whole; comments are dropped. An assert cut off
 * by the end of the answer is returned as is: it is one of the tests the model wrote, and the
 * oracle rejects it.
 */
export function extractAsserts(answer: string): string[] {
  const blocks = pythonBlocks(answer);
  const sources = blocks.length > 0 ? blocks.map((b) => b.code) : [answerPart(answer)];
  return sources.flatMap(splitStatements).filter((statement) => assertKeyword.test(statement));
}
