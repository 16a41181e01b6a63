import { runUpdateCommand } from '../run-workflow.js';
import { retryUpdate } from '../../workflows/run-control.js';

/** Runs a blocked run's stage again, once its cause is fixed (the blocked line names the cause). */
export default runUpdateCommand('retry', 'retry <runId>: run the stage a blocked run waits on again, after fixing its cause', retryUpdate, 'retrying the blocked stage');
