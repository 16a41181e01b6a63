import type { Client } from '@temporalio/client';
import type { DeviceReport } from '../../workflows/contract.js';
import { taskQueues } from '../../workflows/contract.js';
import type { codeA1DeviceReport } from '../../workflows/device-report.js';
import type { Finding } from './finding.js';
import { describe, fail, pass, within } from './finding.js';

const gib = (bytes: number) => `${(bytes / 2 ** 30).toFixed(1)} GiB`;

/**
 * Below this share of a device's memory free, something else holds it (a model server, another
 * run's trainer) and the update would run out of memory hours in; the trainer wants the device to itself.
 */
const minFreeShare = 0.5;

/**
 * The gpu worker's devices against `trainer.devices`: asked on the gpu worker itself (its
 * CUDA_VISIBLE_DEVICES, its torch), through a one-activity workflow, since only a worker on that
 * queue runs on that machine.
 */
export async function checkDevices(client: Client, workflowId: string, devices: number): Promise<Finding> {
  const subject = `trainer.devices ${devices}`;
  let report: DeviceReport;
  try {
    // The workflow's own limits (30 s to start the activity, which imports torch) end it sooner;
    // this bound is for workers older than the workflow type, which retry its task until the timeout.
    const started = client.workflow.execute<typeof codeA1DeviceReport>('codeA1DeviceReport', {
      taskQueue: taskQueues.orchestration,
      workflowId,
      workflowIdConflictPolicy: 'USE_EXISTING',
      workflowExecutionTimeout: '2 minutes',
    });
    report = await within(100_000, 'the device report', started);
  } catch (err) {
    return fail(
      subject,
      `the gpu worker did not report its devices: ${describe(err)}`,
      'restart the orchestration and gpu workers from this checkout (older ones lack the device report); if a policy update holds the gpu worker, wait for it or start another: npx code-a1 worker gpu',
    );
  }
  const where = `the gpu worker on ${report.host}`;
  if (report.error) return fail(subject, `${where} cannot list its devices: ${report.error}`, 'install the trainer environment on that machine: infra/install-python.sh');
  const visible = report.visibleDevices !== undefined ? ` (CUDA_VISIBLE_DEVICES=${report.visibleDevices})` : '';
  if (report.cuda.length === 0) {
    if (devices > report.cpuCount) return fail(subject, `${where} has no CUDA device${visible} and ${report.cpuCount} CPU cores for ${devices} trainer processes`, 'run the gpu worker on a machine with the GPUs, or lower trainer.devices');
    return pass(subject, `${where} has no CUDA device${visible}: the trainer runs on its ${report.cpuCount} CPU cores (torch ${report.torch})`);
  }
  if (report.cuda.length < devices) {
    return fail(subject, `${where} sees ${report.cuda.length} CUDA device(s)${visible}`, `run the gpu worker where ${devices} GPUs are visible (CUDA_VISIBLE_DEVICES), or set trainer.devices to ${report.cuda.length}`);
  }
  const used = report.cuda.slice(0, devices);
  const busy = used.filter((d) => d.freeBytes < minFreeShare * d.totalBytes);
  if (busy.length > 0) {
    const list = busy.map((d) => `GPU ${d.index} (${d.name}) has ${gib(d.freeBytes)} of ${gib(d.totalBytes)} free`).join(', ');
    return fail(subject, `${where}: ${list}`, 'stop what holds that memory (nvidia-smi lists it), or give the gpu worker other GPUs with CUDA_VISIBLE_DEVICES');
  }
  const names = [...new Set(used.map((d) => d.name))].join(', ');
  return pass(subject, `${where} sees ${report.cuda.length} CUDA device(s)${visible}; the ${devices} used (${names}) have ${used.map((d) => gib(d.freeBytes)).join(', ')} free`);
}
