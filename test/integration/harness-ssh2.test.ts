// Pins what a raw ssh2 Client sees for each fault-proxy fault, so classification tests can rely on the shapes.
import { readFile } from 'node:fs/promises';
import { Client } from 'ssh2';
import { startFaultProxy, startSshd, type FaultSpec, type Sshd } from '../../harness/index.js';

let server: Sshd;
let privateKey: Buffer;

beforeAll(async () => {
  server = await startSshd();
  privateKey = await readFile(server.userKeyPath);
}, 20_000);

afterAll(async () => {
  await server?.stop();
}, 20_000);

/** Connects once and returns the Client events up to 'close', e.g. "error(read ECONNRESET/client-socket) -> end". */
function connectOnce(port: number, readyTimeout = 3000): Promise<string> {
  return new Promise((resolve) => {
    const client = new Client();
    const events: string[] = [];
    client.on('error', (error: Error & { level?: string }) => events.push(`error(${error.message}/${error.level ?? ''})`));
    client.on('end', () => events.push('end'));
    client.on('ready', () => {
      events.push('ready');
      client.end();
    });
    client.on('close', () => resolve(events.join(' -> ')));
    client.connect({ host: '127.0.0.1', port, username: server.user, privateKey, readyTimeout, hostVerifier: () => true });
  });
}

const LOST = 'error(Connection lost before handshake/protocol)';

const cases: Array<{ name: string; fault: FaultSpec; expected: RegExp; readyTimeout?: number }> = [
  {
    name: 'RST before banner (default: after the client sent its ident)',
    fault: { kind: 'reset' },
    expected: new RegExp(`^error\\(read ECONNRESET/client-socket\\) -> ${LOST.replace(/[()]/g, '\\$&')}$`),
  },
  { name: 'FIN before banner', fault: { kind: 'close' }, expected: /^error\(Connection lost before handshake\/protocol\) -> end$/ },
  {
    // sshd's own MaxStartups drop: the notice and the RST arrive together, libuv reports EOF (FIN-shaped);
    // occasionally the client reads the notice first and then sees read ECONNRESET.
    name: 'MaxStartups imitation (notice, then RST)',
    fault: { kind: 'reset', notice: 'Exceeded MaxStartups\r\n' },
    expected: /Connection lost before handshake\/protocol/,
  },
  {
    name: 'RST after the server banner',
    fault: { kind: 'reset', at: 'after-banner', settleMs: 150 },
    expected: /^error\((read|write) ECONNRESET\/client-socket\)$/,
  },
  { name: 'FIN after the server banner: no error at all', fault: { kind: 'close', at: 'after-banner' }, expected: /^end$/ },
  {
    name: 'RST mid-KEX',
    fault: { kind: 'reset', at: 'mid-kex', afterBytes: 600, settleMs: 150 },
    expected: /^error\((read|write) ECONNRESET\/client-socket\)$/,
  },
  { name: 'FIN mid-KEX: no error at all', fault: { kind: 'close', at: 'mid-kex', afterBytes: 600 }, expected: /^end$/ },
  {
    name: 'hang after the banner: readyTimeout',
    fault: { kind: 'hang', at: 'after-banner' },
    expected: /^error\(Timed out while waiting for handshake\/client-timeout\)/,
    readyTimeout: 800,
  },
];

describe('ssh2 Client through the fault proxy', () => {
  it.each(cases)('$name', async ({ fault, expected, readyTimeout }) => {
    const proxy = await startFaultProxy({ targetPort: server.port, plan: { failFirst: 2, fault } });
    try {
      const seen = [await connectOnce(proxy.port, readyTimeout), await connectOnce(proxy.port, readyTimeout)];
      for (const events of seen) expect(events).toMatch(expected);
      expect(await connectOnce(proxy.port)).toBe('ready -> end');
      expect(proxy.faultsTriggered).toBe(2);
    } finally {
      await proxy.close();
    }
  }, 15_000);
});
