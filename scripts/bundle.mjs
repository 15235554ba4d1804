// Bundles the CLI into one file, dist/safe-scp.mjs (the `safe-scp` bin), after `tsc` built dist/.
// One file starts about 0.25 s sooner than the module graph it replaces (npm run bench, start-up).
// ssh2's native crypto binding and cpu-features stay outside, loaded from node_modules as before.
import * as esbuild from 'esbuild';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

const plugin = {
  name: 'safe-scp-bundle',
  setup(build) {
    // ssh2 requires its binding relatively (./crypto/build/Release/sshcrypto.node) and falls back to pure JS
    // when it is missing; from the bundle the package path finds the one npm built.
    build.onResolve({ filter: /sshcrypto\.node$/ }, () => ({ path: 'ssh2/lib/protocol/crypto/build/Release/sshcrypto.node', external: true }));
    build.onResolve({ filter: /^string-width$/ }, () => ({ path: path.join(root, 'scripts', 'string-width.mjs') }));
  },
};

await esbuild.build({
  entryPoints: [path.join(root, 'dist', 'cli.js')],
  outfile: path.join(root, 'dist', 'safe-scp.mjs'),
  bundle: true,
  platform: 'node',
  format: 'esm',
  target: 'node20',
  external: ['cpu-features'],
  plugins: [plugin],
  logLevel: 'warning',
  legalComments: 'none',
  banner: {
    // CommonJS dependencies (ssh2) use require, __filename and __dirname.
    js: [
      "import { createRequire as __safeScpRequire } from 'node:module';",
      "import { fileURLToPath as __safeScpPath } from 'node:url';",
      'const require = __safeScpRequire(import.meta.url);',
      'const __filename = __safeScpPath(import.meta.url);',
      "const __dirname = __filename.slice(0, __filename.lastIndexOf('/'));",
    ].join('\n'),
  },
});
