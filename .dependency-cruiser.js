/**
 * The import rules of the codebase, checked by `npm run lint` (depcruise). What may import what:
 *   apps/* are the processes and import libs; libs never import apps, and an app never imports another app;
 *   libs/mmoe (the model library) imports no Nest and no other lib; libs/common (domain errors, plain utilities)
 *   imports nothing;
 *   migrations import only TypeORM; nothing imports a test or a bench; and no import cycle, type-only ones included.
 * @type {import('dependency-cruiser').IConfiguration}
 */
module.exports = {
  forbidden: [
    {
      name: 'no-circular',
      severity: 'error',
      comment: 'A cycle (type-only imports count) ties modules together so that neither can change or load alone.',
      from: {},
      to: { circular: true },
    },
    {
      name: 'libs-not-apps',
      severity: 'error',
      comment: 'Libraries serve the apps and never import them.',
      from: { path: '^libs/' },
      to: { path: '^apps/' },
    },
    {
      name: 'apps-not-other-apps',
      severity: 'error',
      comment: 'An app shares code with another through a lib, never by importing it.',
      from: { path: '^apps/([^/]+)/' },
      to: { path: '^apps/', pathNot: '^apps/$1/' },
    },
    {
      name: 'mmoe-alone',
      severity: 'error',
      comment: 'The model library is plain TypeScript over TensorFlow.js: no other lib, no Nest.',
      from: { path: '^libs/mmoe/' },
      to: { path: ['^libs/(?!mmoe/)', '^node_modules/@nestjs/'] },
    },
    {
      name: 'common-imports-nothing',
      severity: 'error',
      comment:
        'Domain errors and plain utilities are the bottom layer: everything may import them, they import nothing.',
      from: { path: '^libs/common/' },
      to: { pathNot: '^libs/common/', dependencyTypesNot: ['core'] },
    },
    {
      name: 'migrations-only-typeorm',
      severity: 'error',
      comment: 'A migration is frozen history: it may not depend on code that changes after it.',
      from: { path: '^migrations/' },
      to: { pathNot: ['^migrations/', '^node_modules/typeorm/'] },
    },
    {
      name: 'no-test-or-bench-in-source',
      severity: 'error',
      comment: 'Source never imports a test fixture or a bench.',
      from: { path: '^(apps|libs|migrations)/', pathNot: '\\.(spec|medium-spec|e2e-spec)\\.ts$' },
      to: { path: ['^test/', '^bench/', '\\.(spec|medium-spec|e2e-spec)\\.ts$'] },
    },
    {
      name: 'not-to-unresolvable',
      severity: 'error',
      comment: 'An import that resolves to nothing is a broken build waiting for its first run.',
      from: {},
      to: { couldNotResolve: true },
    },
  ],
  options: {
    doNotFollow: { path: 'node_modules' },
    exclude: { path: '^(dist|coverage)/' },
    tsPreCompilationDeps: true,
    tsConfig: { fileName: 'tsconfig.json' },
    enhancedResolveOptions: {
      exportsFields: ['exports'],
      conditionNames: ['import', 'require', 'node', 'default', 'types'],
      extensions: ['.ts', '.js', '.json', '.node'],
    },
  },
};
