import { Connection } from '@temporalio/client';
import { connectionError } from '../config/temporal-connection.js';
import type { TemporalConnection } from '../config/temporal-connection.js';

/** The CLI's connection to Temporal; a failure says where, how and, over TLS, why. */
export async function connectTemporal(temporal: TemporalConnection): Promise<Connection> {
  try {
    return await Connection.connect(temporal.clientOptions());
  } catch (err) {
    throw await connectionError(temporal, err);
  }
}
