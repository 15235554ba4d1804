import fs from 'node:fs';
import type { SFTPWrapper } from 'ssh2';
import { CHECKED_SSH2_VERSION, SAFE_SFTP_LENGTH, cryptoKind, sftpLimits, ssh2Version } from '../../../src/ssh/ssh2-internals.js';

const sftp = (fields: Record<string, unknown>): SFTPWrapper => fields as unknown as SFTPWrapper;

test('package.json pins ssh2 to the version the private reads were checked against, and that is the one installed', () => {
  const pkg = JSON.parse(fs.readFileSync('package.json', 'utf8')) as { dependencies: Record<string, string> };
  expect(pkg.dependencies['ssh2']).toBe(CHECKED_SSH2_VERSION);
  expect(ssh2Version()).toBe(CHECKED_SSH2_VERSION);
});

test('with the checked ssh2: the server limits as recorded, and whether the binding loaded', () => {
  expect(sftpLimits(sftp({ _maxWriteLen: 261120, _maxReadLen: 261120 }))).toEqual({ write: 261120, read: 261120 });
  expect(['native', 'javascript']).toContain(cryptoKind());
});

test('with another ssh2 version, or fields that are not what they were: the safe fallbacks, nothing guessed', () => {
  expect(sftpLimits(sftp({ _maxWriteLen: 261120, _maxReadLen: 261120 }), '1.17.1')).toEqual({ write: SAFE_SFTP_LENGTH, read: SAFE_SFTP_LENGTH });
  expect(cryptoKind('1.18.0')).toBe('unknown');
  expect(sftpLimits(sftp({ _maxWriteLen: 'x', _maxReadLen: -1 }))).toEqual({ write: SAFE_SFTP_LENGTH, read: SAFE_SFTP_LENGTH });
});
