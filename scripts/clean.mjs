// Removes build output folders named on the command line (dist, build) before a build, so that no stale
// output of moved or deleted modules stays behind (and none ends up in the package).
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
for (const name of process.argv.slice(2)) {
  if (name !== 'dist' && name !== 'build') throw new Error(`clean: refusing to remove ${name} (only dist or build)`);
  fs.rmSync(path.join(root, name), { recursive: true, force: true });
}
