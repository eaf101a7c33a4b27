// Lint: type-aware typescript-eslint. The rules that matter most here are the promise ones
// (a floating promise in a daemon is a lost error or an unhandled rejection that kills it).
import js from '@eslint/js';
import tseslint from 'typescript-eslint';

/** Forbids, in `files`, imports whose specifier matches `regex`. */
function layer(files, regex, message) {
  return { files, rules: { 'no-restricted-imports': ['error', { patterns: [{ regex, message }] }] } };
}

export default tseslint.config(
  { ignores: ['dist/**', 'node_modules/**', 'test/fixtures/**'] },
  js.configs.recommended,
  ...tseslint.configs.recommendedTypeChecked,
  {
    languageOptions: {
      parserOptions: { project: ['./tsconfig.json', './tsconfig.bench.json'], tsconfigRootDir: import.meta.dirname },
    },
    rules: {
      // Fastify handlers and tap callbacks are async by contract even when they await nothing.
      '@typescript-eslint/require-await': 'off',
      '@typescript-eslint/restrict-template-expressions': [
        'error',
        { allowNumber: true, allowBoolean: true, allowNullish: true, allowArray: true },
      ],
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', caughtErrors: 'none' }],
    },
  },
  {
    // tap queues `t.test(...)` subtests itself and reports their failures: not floating.
    files: ['test/**/*.ts'],
    rules: {
      '@typescript-eslint/no-floating-promises': [
        'error',
        { allowForKnownSafePromises: [{ from: 'package', name: 'PromiseWithSubtest', package: '@tapjs/core' }] },
      ],
    },
  },
  // The layers (docs/ARCHITECTURE.md): each block says what a folder may not import.
  layer(
    ['drivers/**/*.ts'],
    '^(\\.\\./)+gateway/(?!contract/|kernel/)',
    'a driver reaches the gateway only through gateway/contract and gateway/kernel',
  ),
  layer(['models/**/*.ts'], '^(\\.\\./)+(gateway|drivers|sync|config)/', 'models/ imports nothing else of the project'),
  layer(
    ['gateway/**/*.ts', 'config/**/*.ts', 'sync/**/*.ts'],
    '^(\\.\\./)+drivers/[^/]+/',
    'the gateway reaches drivers only through the registry, drivers/index.ts',
  ),
  layer(['gateway/kernel/**/*.ts'], '^\\.\\./', 'the kernel imports nothing else of the project'),
  layer(['gateway/contract/**/*.ts'], '^\\.\\./(?!kernel/)', 'the driver contract rests on the kernel alone'),
  layer(['sync/cloud/**/*.ts'], '^(\\.\\./)+(gateway/(?!kernel/)|drivers/|models/)', 'the cloud shares only the kernel with the gateway'),
  { files: ['eslint.config.js'], ...tseslint.configs.disableTypeChecked },
);
