const { join } = require('node:path');
const tsconfigPaths = require('tsconfig-paths');

/**
 * The @app/* aliases as Jest module names, read from tsconfig.json (their one source): `@app/x` becomes `^@app/x$`
 * and `@app/x/*` becomes `^@app/x/(.*)$`, each to its first target.
 */
function moduleNameMapperOf(tsconfig) {
  if (tsconfig.resultType !== 'success') throw new Error(tsconfig.message);
  return Object.fromEntries(
    Object.entries(tsconfig.paths).map(([alias, [target]]) => [
      `^${alias.replace(/[.+?^${}()|[\]\\]/g, '\\$&').replace('*', '(.*)')}$`,
      join(tsconfig.absoluteBaseUrl, target.replace('*', '$1')),
    ]),
  );
}

/** One Jest config for unit specs (next to the source), medium specs (test/medium) and e2e specs (test/). */
module.exports = {
  testEnvironment: '<rootDir>/test/onnxruntime.environment.ts',
  roots: ['<rootDir>/apps', '<rootDir>/libs', '<rootDir>/test', '<rootDir>/bench', '<rootDir>/scripts'],
  testMatch: ['**/*.spec.ts', '**/*.medium-spec.ts', '**/*.e2e-spec.ts'],
  transform: {
    '^.+\\.ts$': [
      '@swc/jest',
      {
        jsc: {
          parser: { syntax: 'typescript', decorators: true },
          transform: { legacyDecorator: true, decoratorMetadata: true },
          target: 'es2022',
        },
        module: { type: 'commonjs' },
      },
    ],
  },
  moduleNameMapper: moduleNameMapperOf(tsconfigPaths.loadConfig(__dirname)),
  setupFiles: ['<rootDir>/test/test-env.ts'],
  globalSetup: '<rootDir>/test/global-setup.ts',
  testTimeout: 120000,
};
