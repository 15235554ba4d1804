// Layering rules for src/ (README "Layout"), run by `npm run lint`. Paths are relative to the repository root.
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
      name: 'src-never-imports-tests',
      severity: 'error',
      comment: 'The product and its tooling never import test code.',
      from: { path: '^src/' },
      to: { path: '^test/' },
    },
    {
      name: 'product-never-imports-tooling',
      severity: 'error',
      comment: 'src/harness (test sshd, fault proxies), src/bench and src/demo are tooling; the product never imports them.',
      from: { path: '^src/', pathNot: '^src/(harness|bench|demo)/' },
      to: { path: '^src/(harness|bench|demo)/' },
    },
  ],
  options: {
    doNotFollow: { path: 'node_modules' },
    tsPreCompilationDeps: true,
    tsConfig: { fileName: 'tsconfig.json' },
    enhancedResolveOptions: { exportsFields: ['exports'], conditionNames: ['import', 'require', 'node', 'default', 'types'] },
  },
};
