import { proxyActivities } from '@temporalio/workflow';
import type { DeviceReport, PreflightActivities } from './contract.js';
import { taskQueues } from './contract.js';

// A pre-flight check answers in seconds or says why not: one attempt, and a gpu worker that does
// not take the task within 30 seconds is busy (a policy update holds its only slot).
const gpu = proxyActivities<PreflightActivities>({
  taskQueue: taskQueues.gpu,
  scheduleToStartTimeout: '30 seconds',
  startToCloseTimeout: '2 minutes',
  retry: { maximumAttempts: 1 },
});

/** The devices and free memory the gpu worker's trainer would get (`code-a1 preflight`). */
export async function codeA1DeviceReport(): Promise<DeviceReport> {
  return gpu.describeDevices();
}
