import fs from 'node:fs';
import { createRequire } from 'node:module';
import { CHECKED_SSH2_VERSION, cryptoKind, ssh2Version } from '../../../src/ssh/native-crypto.js';

test('package.json pins ssh2 to the version whose addon path was checked, and that is the one installed', () => {
  const pkg = JSON.parse(fs.readFileSync('package.json', 'utf8')) as { dependencies: Record<string, string> };
  expect(pkg.dependencies['ssh2']).toBe(CHECKED_SSH2_VERSION);
  expect(ssh2Version()).toBe(CHECKED_SSH2_VERSION);
});

test('says what ssh2 itself uses: native exactly when ssh2 loaded its addon', () => {
  // The test's own view of ssh2's choice (a test may look inside; the product does not).
  const { bindingAvailable } = createRequire(import.meta.url)('ssh2/lib/protocol/crypto.js') as { bindingAvailable: boolean };
  expect(cryptoKind()).toBe(bindingAvailable ? 'native' : 'javascript');
});

test('another ssh2 version without the addon where this one keeps it: unknown, nothing guessed', () => {
  if (cryptoKind() === 'native') expect(cryptoKind('1.18.0')).toBe('native');
  else expect(cryptoKind('1.18.0')).toBe('unknown');
});
