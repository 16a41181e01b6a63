/**
 * The sandbox itself could not run something (bubblewrap missing, a fork server that died twice,
 * a namespace that could not be created). Never a program outcome: activities let it propagate so
 * that Temporal retries, and no test is ever scored from it.
 */
export class SandboxUnavailableError extends Error {
  override name = 'SandboxUnavailableError';
}
