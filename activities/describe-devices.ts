import { execa } from 'execa';
import type { DeviceReport, PreflightActivities } from '../workflows/contract.js';
import { builtinTrainerCommand } from './update-policy.js';

/**
 * What the trainer's interpreter sees, asked the way the trainer asks: torch's CUDA devices with
 * their free memory (`torch.cuda.mem_get_info`, so memory held by other processes counts as used).
 */
const script = `
import json, os, socket
report = {"host": socket.gethostname(), "cpuCount": os.cpu_count() or 1, "cuda": []}
if os.environ.get("CUDA_VISIBLE_DEVICES") is not None:
    report["visibleDevices"] = os.environ["CUDA_VISIBLE_DEVICES"]
try:
    import torch
    report["torch"] = torch.__version__
    for i in range(torch.cuda.device_count() if torch.cuda.is_available() else 0):
        free, total = torch.cuda.mem_get_info(i)
        report["cuda"].append({"index": i, "name": torch.cuda.get_device_name(i), "freeBytes": free, "totalBytes": total})
except Exception as e:
    report["error"] = f"{type(e).__name__}: {e}"
print(json.dumps(report))
`;

/** Activity `describeDevices` (gpu worker): the machine's devices for `code-a1 preflight`. */
export function createDescribeDevicesActivity(options: { python?: string } = {}) {
  const python = options.python ?? builtinTrainerCommand[0]!;
  return {
    async describeDevices(): Promise<DeviceReport> {
      // Importing torch and initialising CUDA take seconds; a minute means something is wrong.
      const result = await execa(python, ['-c', script], { reject: false, timeout: 60_000 });
      if (result.failed) {
        const why = result.stderr.trim().split('\n').at(-1) || (result.cause instanceof Error ? result.cause.message : `exit status ${result.exitCode}`);
        return { host: 'unknown', cpuCount: 0, cuda: [], error: `${python} failed: ${why}` };
      }
      return JSON.parse(result.stdout) as DeviceReport;
    },
  } satisfies PreflightActivities;
}
