/**
 * The endpoint serves other weights than the ones published to it: it restarted (and came back
 * with its initial checkpoint), another publish replaced them, or a reload answered success and
 * kept the old weights (caught by the probe). Retryable: the next attempt publishes again.
 */
export class ServedCheckpointChangedError extends Error {
  override name = 'ServedCheckpointChangedError';
}
