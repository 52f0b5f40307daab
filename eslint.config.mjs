// @ts-check
import js from '@eslint/js';
import eslintConfigPrettier from 'eslint-config-prettier/flat';
import { defineConfig, globalIgnores } from 'eslint/config';
import globals from 'globals';
import tseslint from 'typescript-eslint';

export default defineConfig(
  globalIgnores(['dist/', 'node_modules/', 'coverage/']),
  js.configs.recommended,
  tseslint.configs.recommended,
  // Layout is Prettier's (npm run format); ESLint keeps to correctness.
  eslintConfigPrettier,
  {
    languageOptions: { globals: { ...globals.node, ...globals.jest } },
  },
  {
    // Libraries and the API's services say what went wrong with domain errors (@app/common); HTTP statuses are decided
    // in the error filter only (apps/api/src/platform/error.filter.ts).
    files: ['libs/**/*.ts', 'apps/**/*.service.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          paths: [
            {
              name: '@nestjs/common',
              importNames: [
                'HttpException',
                'BadRequestException',
                'UnauthorizedException',
                'ForbiddenException',
                'NotFoundException',
                'ConflictException',
                'GoneException',
                'PayloadTooLargeException',
                'UnprocessableEntityException',
                'InternalServerErrorException',
                'ServiceUnavailableException',
                'GatewayTimeoutException',
                'HttpStatus',
              ],
              message: 'libraries and services throw domain errors from @app/common; error.filter.ts maps them to HTTP',
            },
          ],
        },
      ],
    },
  },
  {
    // Plain .js files are CommonJS tool configs (jest.config.js), where require and module.exports are the norm.
    files: ['**/*.js', '**/*.cjs'],
    languageOptions: { sourceType: 'commonjs' },
    rules: { '@typescript-eslint/no-require-imports': 'off' },
  },
);
