export { extractCode } from './code-block.js';
export type { ExtractCodeOptions } from './code-block.js';
export { extractAsserts } from './asserts.js';
export { nonprintableRatio } from './nonprintable.js';
export { findFencedBlocks, answerPart } from './fences.js';
export type { FencedBlock } from './fences.js';
export { splitStatements } from './python-statements.js';
