// Layering rules for src/ and its tooling (README "Layout"), run by `npm run lint`. Paths are relative to the repository root.
/** @type {import('dependency-cruiser').IConfiguration} */
export default {
  forbidden: [
    { name: 'no-cycles', severity: 'error', comment: 'Modules import each other in one direction only.', from: {}, to: { circular: true } },
    {
      name: 'leaves-do-not-import-the-run',
      severity: 'error',
      comment: 'log/, hostkeys/, throttle/ and diagnose/ serve the run: they never import copy.ts or cli.ts.',
      from: { path: '^src/(log|hostkeys|throttle|diagnose)/' },
      to: { path: '^src/(copy|cli)\\.ts$' },
    },
    {
      name: 'nothing-imports-the-cli',
      severity: 'error',
      comment: 'cli.ts is the entry point of the command; nothing imports it.',
      from: { path: '^src/' },
      to: { path: '^src/cli\\.ts$' },
    },
    {
      name: 'yargs-only-in-the-cli',
      severity: 'error',
      comment: 'Only cli.ts parses the command line; the option table (options.ts) and util/ helpers stay free of yargs.',
      from: { path: '^src/', pathNot: '^src/cli\\.ts$' },
      to: { path: 'node_modules/yargs/' },
    },
    {
      name: 'product-never-imports-tooling',
      severity: 'error',
      comment: 'src/ is what safe-scp runs: it never imports the tests, the harness (test sshd, fault proxies), the bench or the demo.',
      from: { path: '^src/' },
      to: { path: '^(test|harness|bench|demo)/' },
    },
    {
      name: 'harness-stands-alone',
      severity: 'error',
      comment: 'harness/ serves the tests, the bench and the demo: it imports none of them.',
      from: { path: '^harness/' },
      to: { path: '^(test|bench|demo)/' },
    },
    {
      name: 'tooling-never-imports-tests',
      severity: 'error',
      comment: 'The bench and the demo never import test code.',
      from: { path: '^(bench|demo)/' },
      to: { path: '^test/' },
    },
  ],
  options: {
    doNotFollow: { path: 'node_modules' },
    tsPreCompilationDeps: true,
    tsConfig: { fileName: 'tsconfig.json' },
    enhancedResolveOptions: { exportsFields: ['exports'], conditionNames: ['import', 'require', 'node', 'default', 'types'] },
  },
};
