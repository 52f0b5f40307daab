/** One Jest config for unit specs (next to the source) and e2e specs (test/). */
module.exports = {
  testEnvironment: '<rootDir>/test/onnxruntime.environment.ts',
  roots: ['<rootDir>/apps', '<rootDir>/libs', '<rootDir>/test'],
  testMatch: ['**/*.spec.ts', '**/*.e2e-spec.ts'],
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
  moduleNameMapper: {
    '^@app/mmoe$': '<rootDir>/libs/mmoe/src',
    '^@app/db$': '<rootDir>/libs/db/src',
    '^@app/common$': '<rootDir>/libs/common/src',
    '^@app/registry$': '<rootDir>/libs/registry/src',
    '^@app/queue$': '<rootDir>/libs/queue/src',
    '^@app/redis$': '<rootDir>/libs/redis/src',
    '^@app/migrations$': '<rootDir>/migrations',
    '^@app/mmoe/(.*)$': '<rootDir>/libs/mmoe/src/$1',
    '^@app/config$': '<rootDir>/libs/config/src',
    '^@app/config/(.*)$': '<rootDir>/libs/config/src/$1',
  },
  setupFiles: ['<rootDir>/test/test-env.ts'],
  globalSetup: '<rootDir>/test/global-setup.ts',
  testTimeout: 120000,
};
