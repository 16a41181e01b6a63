// The workflow bundle's entry: every workflow type the workers register.
export { codeA1Training } from './training.js';
export { codeA1Iteration } from './iteration.js';
export { codeA1Evaluate } from './evaluate.js';
export { codeA1DeviceReport } from './device-report.js';
export { codeA1Nightly } from './nightly.js';
