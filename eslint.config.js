// Lint: typescript-eslint's recommended rules, with `any` forbidden everywhere
// (the codebase uses zod-parsed types and `unknown` at trust boundaries).
import tseslint from 'typescript-eslint';

export default tseslint.config(
  { ignores: ['node_modules/', '.tools/', 'build/', 'dist/', 'charts/', 'manifests/', 'crds/'] },
  ...tseslint.configs.recommended,
  {
    rules: {
      '@typescript-eslint/no-explicit-any': 'error',
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      'no-control-regex': 'off',
    },
  },
);
