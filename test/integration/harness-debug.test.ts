// temporary debug
import { Client } from 'ssh2';
import { startFaultProxy, type FaultSpec } from '../../src/harness/index.js';
import { startSshd } from '../../src/harness/index.js';
import { readFileSync } from 'node:fs';

function attempt(port: number, key: Buffer): Promise<string> {
  return new Promise((resolve) => {
    const c = new Client();
    const events: string[] = [];
    c.on('error', (e: Error & { code?: string; syscall?: string; level?: string }) => events.push(`error(${e.message}/${e.level})`));
    c.on('end', () => events.push('end'));
    c.on('ready', () => { events.push('ready'); c.end(); });
    c.on('close', () => resolve(events.join(' -> ')));
    c.connect({ host: '127.0.0.1', port, username: 'root', privateKey: key, readyTimeout: 3000, hostVerifier: () => true });
  });
}
it('ssh2 shapes', async () => {
  const s = await startSshd();
  const key = readFileSync(s.userKeyPath);
  const faults: FaultSpec[] = [
    { kind: 'reset' }, { kind: 'reset', delayMs: 0 }, { kind: 'reset', delayMs: 50 }, { kind: 'close' }, { kind: 'close', delayMs: 0 },
    { kind: 'reset', notice: 'Exceeded MaxStartups\r\n' }, { kind: 'reset', notice: 'Exceeded MaxStartups\r\n', delayMs: 50 }, { kind: 'reset', notice: 'Exceeded MaxStartups\r\n', settleMs: 20 }, { kind: 'close', notice: 'Exceeded MaxStartups\r\n' },
    { kind: 'hang', at: 'mid-kex' },
    { kind: 'reset', at: 'after-banner' }, { kind: 'close', at: 'after-banner' },
    { kind: 'reset', at: 'mid-kex', afterBytes: 600 }, { kind: 'reset', at: 'mid-kex', afterBytes: 600, settleMs: 0 }, { kind: 'close', at: 'mid-kex', afterBytes: 600 },
  ];
  for (const fault of faults) {
    const p = await startFaultProxy({ targetPort: s.port, plan: { fault } });
    const counts = new Map<string, number>();
    for (let i = 0; i < 10; i++) { const r = await attempt(p.port, key); counts.set(r, (counts.get(r) ?? 0) + 1); }
    console.log(JSON.stringify(fault) + '\n' + [...counts].map(([k, v]) => `  ${v}x ${k}`).join('\n'));
    await p.close();
  }
  await s.stop();
}, 120000);
