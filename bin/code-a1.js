#!/usr/bin/env node
// The project is run from its TypeScript sources through tsx, so the CLI, the workers and the
// tests all execute the same files and there is no build step to forget.
import { register } from 'tsx/esm/api';

// The AWS SDK is pinned to a release that supports Node 20 (see package.json); its notice that
// later releases will not is noise on every command.
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';

register();
const { main } = await import('../cli/main.ts');
process.exitCode = await main(process.argv.slice(2));
