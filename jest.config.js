/** Unit specs beside the code; e2e specs against the real app, PostgreSQL and Redis. */
const swc = [
  '@swc/jest',
  {
    jsc: {
      parser: { syntax: 'typescript', decorators: true },
      transform: { legacyDecorator: true, decoratorMetadata: true },
      target: 'es2022',
    },
    module: { type: 'commonjs' },
    sourceMaps: 'inline',
  },
];

module.exports = {
  testTimeout: 30000,
  // The run ends when the last file does: a handle a file failed to close must not keep CI waiting.
  forceExit: true,
  // Most of an e2e file's time is spent waiting on PostgreSQL, Redis and sockets: three files at once keep a
  // 2-core box busy (Jest's default here would be one).
  maxWorkers: 3,
  projects: [
    {
      displayName: 'unit',
      testEnvironment: 'node',
      rootDir: __dirname,
      testMatch: ['<rootDir>/src/**/*.spec.ts'],
      transform: { '^.+\\.ts$': swc },
    },
    {
      displayName: 'e2e',
      testEnvironment: 'node',
      rootDir: __dirname,
      testMatch: ['<rootDir>/test/e2e/**/*.e2e-spec.ts'],
      // A few dependencies ship ESM only; Jest on Node 20 needs them compiled to CommonJS.
      transform: { '^.+\\.[tj]s$': swc },
      transformIgnorePatterns: ['/node_modules/(?!(content-disposition)/)'],
      globalSetup: '<rootDir>/test/support/global-setup.ts',
      globalTeardown: '<rootDir>/test/support/global-teardown.ts',
    },
  ],
};
