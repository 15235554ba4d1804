// hostVerifier: synchronous answers for pinned keys and re-keys, async only for accept-new's append.
import { createHash } from 'node:crypto';

import type { ConnectTrace } from '../../../src/classify.js';
import { fingerprint } from '../../../src/hostkeys/fingerprint.js';
import { formatKnownHostsLine, parseKnownHosts } from '../../../src/hostkeys/known-hosts.js';
import type { HostKeyPins } from '../../../src/hostkeys/policy.js';
import { hostVerifier, type HostVerifierOptions } from '../../../src/hostkeys/verifier.js';
import type { SafeScpEvent } from '../../../src/log/events.js';
import { wireBlob } from './ssh-tools.js';

const key = (seed: string): Buffer => wireBlob('ssh-ed25519', createHash('sha256').update(seed).digest());
const KEY_A = key('a');
const KEY_B = key('b');

const HOST = 'deploy.example';
const PORT = 2222;

function pinsFor(...blobs: Buffer[]): HostKeyPins {
  const text = blobs.map((b) => formatKnownHostsLine(HOST, PORT, b)).join('\n');
  return { entries: parseKnownHosts(text, '/ci/known_hosts').entries, fingerprints: [] };
}

function setup(pins: HostKeyPins, extra: Partial<HostVerifierOptions> = {}) {
  const trace: ConnectTrace = { host: HOST, port: PORT, phase: 'banner', preBanner: Buffer.alloc(0) };
  const events: SafeScpEvent[] = [];
  const answers: boolean[] = [];
  const verify = hostVerifier(
    { host: HOST, port: PORT, pins, strictHostKeyChecking: 'yes', acceptNewFile: '/home/ci/.ssh/known_hosts', emit: (e) => events.push(e), ...extra },
    trace,
  );
  const ask = (blob: Buffer): boolean | undefined => verify(blob, (ok) => answers.push(ok));
  return { trace, events, answers, ask };
}

test('a pinned key is accepted synchronously, and so is the same key at every re-key, without touching the trace', () => {
  const { trace, answers, ask } = setup(pinsFor(KEY_A));
  expect(ask(KEY_A)).toBe(true);
  expect(trace.phase).toBe('kex');
  expect(trace.hostKey).toEqual({ type: 'ssh-ed25519', fingerprint: fingerprint(KEY_A) });
  trace.phase = 'transfer';
  // A copy of the bytes: the same key, not the same Buffer.
  for (let i = 0; i < 3; i++) expect(ask(Buffer.from(KEY_A))).toBe(true);
  expect(trace.phase).toBe('transfer');
  expect(trace.hostKeyRefusal).toBeUndefined();
  expect(answers).toEqual([]);
});

test('at a re-key, any other key is refused synchronously as host-key-changed, even one that is also pinned', () => {
  const { trace, ask } = setup(pinsFor(KEY_A, KEY_B));
  expect(ask(KEY_A)).toBe(true);
  expect(ask(KEY_B)).toBe(false);
  expect(trace.hostKeyRefusal?.code).toBe('host-key-changed');
  expect(trace.hostKeyRefusal?.message).toContain(fingerprint(KEY_A));
  expect(trace.hostKeyRefusal?.message).toContain(fingerprint(KEY_B));
  expect(trace.hostKeyRefusal?.message).toMatch(/during a re-key/);
  expect(trace.hostKeyRefusal?.details).toMatchObject({ offered: { fingerprint: fingerprint(KEY_B) }, verifiedAtStart: { fingerprint: fingerprint(KEY_A) } });
});

test('a key that is not pinned is refused synchronously with the policy decision, and a re-key cannot rescue it', () => {
  const { trace, ask } = setup(pinsFor(KEY_A));
  expect(ask(KEY_B)).toBe(false);
  expect(trace.hostKeyRefusal?.code).toBe('host-key-changed');
  expect(trace.hostKeyRefusal?.message).toMatch(/^Host key CHANGED for deploy.example:2222: the server offered/);
  expect(ask(KEY_B)).toBe(false);
});

test('accept-new: an unknown key is answered once the line is appended; the re-key after it is synchronous', async () => {
  const appended: Array<[string, string]> = [];
  const { trace, events, answers, ask } = setup(pinsFor(), {
    strictHostKeyChecking: 'accept-new',
    append: async (file, line) => {
      appended.push([file, line]);
    },
  });
  expect(ask(KEY_A)).toBeUndefined();
  expect(answers).toEqual([]);
  await new Promise((resolve) => setImmediate(resolve));
  expect(answers).toEqual([true]);
  expect(appended).toEqual([['/home/ci/.ssh/known_hosts', formatKnownHostsLine(HOST, PORT, KEY_A)]]);
  expect(events).toMatchObject([{ kind: 'host-key-learned', host: HOST, port: PORT, fingerprint: fingerprint(KEY_A) }]);
  expect(trace.phase).toBe('kex');
  expect(ask(KEY_A)).toBe(true);
  expect(ask(KEY_B)).toBe(false);
  expect(appended).toHaveLength(1);
});

test('accept-new: a failed append refuses the key', async () => {
  const { answers, ask } = setup(pinsFor(), {
    strictHostKeyChecking: 'accept-new',
    append: () => Promise.reject(new Error('EROFS')),
  });
  expect(ask(KEY_A)).toBeUndefined();
  await new Promise((resolve) => setImmediate(resolve));
  expect(answers).toEqual([false]);
});

test('accept-new never overrides a pinned, different key', () => {
  const { trace, ask } = setup(pinsFor(KEY_A), { strictHostKeyChecking: 'accept-new' });
  expect(ask(KEY_B)).toBe(false);
  expect(trace.hostKeyRefusal?.code).toBe('host-key-changed');
});
