#!/usr/bin/env node
// The project is run from its TypeScript sources through tsx, so the CLI, the workers and the
// tests all execute the same files and there is no build step to forget.
import { register } from 'tsx/esm/api';

register();
const { main } = await import('../cli/main.ts');
process.exitCode = await main(process.argv.slice(2));
