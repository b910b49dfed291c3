import { readdirSync } from 'node:fs';
import eslint from '@eslint/js';
import prettier from 'eslint-config-prettier';
import tseslint from 'typescript-eslint';

/*
 * The layer rule (docs/ARCHITECTURE.md, "Layers"), kept by `no-restricted-imports`:
 * - `src/common` and `src/infra` import no feature (`src/modules/*`);
 * - a feature imports another only through its public surface: `<f>.module`
 *   (for Nest `imports`), `<f>.service` (the exported service) and `<f>.schemas`
 *   (the types its public methods take and return), plus the files listed in
 *   PUBLIC_EXTRAS; never its repository, controller, processor or other internals;
 * - `trips` never imports `tracking` (tracking depends on trips, not the reverse).
 * `src/main.ts`, `src/app*.ts` and `src/cli/` are the composition root and may import anything.
 */
const FEATURES = readdirSync(new URL('./src/modules/', import.meta.url), { withFileTypes: true })
  .filter((d) => d.isDirectory())
  .map((d) => d.name);

/** Files beyond `<f>.module|service|schemas` that are part of a feature's public surface. */
const PUBLIC_EXTRAS = {
  // The pure trip status rules (`isActive`, the statuses): tracking accepts pings only for an active trip.
  trips: ['trip-status'],
  // The one list of org roles and their groups, which every feature's access checks name.
  orgs: ['org-roles'],
};

const escape = (s) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

/** An import path (relative, from a feature's folder) reaching into feature `f`. */
const intoFeature = (f) => `^(\\.\\./)+(modules/)?${escape(f)}`;

const crossFeaturePatterns = (self) =>
  FEATURES.filter((f) => f !== self).map((f) => {
    const allowed = [`${f}.module`, `${f}.service`, `${f}.schemas`, ...(PUBLIC_EXTRAS[f] ?? [])].map(escape);
    return {
      regex: `${intoFeature(f)}(/(?!(${allowed.join('|')})$)|$)`,
      caseSensitive: true,
      message: `Another feature is used only through ${f}.module, ${f}.service or ${f}.schemas (docs/ARCHITECTURE.md, "Layers").`,
    };
  });

/** Extra bans per feature. */
const FEATURE_BANS = {
  trips: [
    {
      regex: `${intoFeature('tracking')}(/|$)`,
      caseSensitive: true,
      message: 'trips never imports tracking: tracking depends on trips (docs/ARCHITECTURE.md, "Layers").',
    },
  ],
};

const layerRules = [
  {
    files: ['src/common/**/*.ts', 'src/infra/**/*.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          patterns: [
            {
              regex: '(^|/)modules(/|$)',
              caseSensitive: true,
              message:
                'common/ and infra/ import no feature: let the feature register with infra instead (docs/ARCHITECTURE.md, "Layers").',
            },
          ],
        },
      ],
    },
  },
  ...FEATURES.map((f) => ({
    files: [`src/modules/${f}/**/*.ts`],
    rules: {
      'no-restricted-imports': ['error', { patterns: [...(FEATURE_BANS[f] ?? []), ...crossFeaturePatterns(f)] }],
    },
  })),
];

export default tseslint.config(
  { ignores: ['dist/**', 'src/generated/**', 'node_modules/**', 'coverage/**'] },
  eslint.configs.recommended,
  ...tseslint.configs.recommended,
  prettier,
  {
    languageOptions: { parserOptions: { projectService: false } },
    rules: {
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
    },
  },
  {
    files: ['test/**/*.ts', '**/*.spec.ts'],
    rules: { '@typescript-eslint/no-explicit-any': 'off' },
  },
  ...layerRules,
  {
    files: ['scripts/**/*.js', 'jest.config.js'],
    languageOptions: { sourceType: 'commonjs', globals: { require: 'readonly', module: 'writable', process: 'readonly', __dirname: 'readonly', console: 'readonly' } },
    rules: { '@typescript-eslint/no-require-imports': 'off' },
  },
);
