import { runUpdateCommand } from '../run-workflow.js';
import { pauseUpdate } from '../../workflows/run-control.js';

/** Holds a run before its next iteration; the running one finishes. `resume <runId>` continues it. */
export default runUpdateCommand('pause', 'pause <runId>: hold the run before its next iteration (the running one finishes); resume <runId> continues it', pauseUpdate, 'pauses before its next iteration');
