import { readFile } from 'node:fs/promises';
import { ConfigError } from '../config/run-config.js';
import { UsageError } from './command.js';

/**
 * Reads a JSON config file and parses it at the edge. Returns the raw JSON too: workflows take
 * the raw input and validate it themselves, so runs started without this CLI are checked alike.
 */
export async function readConfigFile<T>(path: string, parse: (raw: unknown) => T): Promise<{ raw: unknown; config: T }> {
  let raw: unknown;
  try {
    raw = JSON.parse(await readFile(path, 'utf8'));
  } catch (err) {
    throw new UsageError(`cannot read ${path}: ${(err as Error).message}`);
  }
  try {
    return { raw, config: parse(raw) };
  } catch (err) {
    if (err instanceof ConfigError) throw new UsageError(`${path}:\n  ${err.issues.join('\n  ')}`);
    throw err;
  }
}
