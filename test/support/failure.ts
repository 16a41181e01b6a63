import assert from 'node:assert/strict';

/** The error an activity call ends with, as the worker's error classification reports it to Temporal. */
export async function failure(promise: Promise<unknown>): Promise<unknown> {
  try {
    await promise;
  } catch (err) {
    return err;
  }
  assert.fail('expected the activity to fail');
}
