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
    // Plain .js files are CommonJS tool configs (jest.config.js), where require and module.exports are the norm.
    files: ['**/*.js', '**/*.cjs'],
    languageOptions: { sourceType: 'commonjs' },
    rules: { '@typescript-eslint/no-require-imports': 'off' },
  },
);
