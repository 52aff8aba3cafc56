#!/usr/bin/env node
// Entry point for `npx haq`: runs the TypeScript CLI through tsx's loader.
import { register } from 'tsx/esm/api';
import { fileURLToPath } from 'node:url';

register();
const main = fileURLToPath(new URL('../cli/main.ts', import.meta.url));
await import(main);
