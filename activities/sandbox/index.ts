export { SandboxUnavailableError } from './errors.js';
export { createSandbox, Sandbox } from './sandbox.js';
export type { CheckTestsInput, ProgramOptions, RunTestsInput, SandboxOptions, ValidateTestsInput } from './sandbox.js';
export type * from './types.js';
export { asPyValue, pyEquals, type PyValue } from './values.js';
