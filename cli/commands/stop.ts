import { runUpdateCommand } from '../run-workflow.js';
import { stopUpdate } from '../../workflows/run-control.js';

/** Ends a run after its current iteration; `resume <runId>` continues it later. */
export default runUpdateCommand('stop', 'stop <runId>: end the run after its current iteration; resume <runId> continues it later', stopUpdate, 'stops after its current iteration');
