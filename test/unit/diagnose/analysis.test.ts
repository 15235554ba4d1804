// analyseAttempts: conclusions across attempts, from the evidence alone.
import { analyseAttempts } from '../../../src/diagnose/analysis.js';
import type { AttemptEvidence } from '../../../src/log/events.js';

const attempt = (n: number, over: Partial<AttemptEvidence>): AttemptEvidence => ({
  host: 'web1',
  port: 22,
  attempt: n,
  startedAt: '2024-01-01T00:00:00.000Z',
  durationMs: 100,
  phase: 'banner',
  ...over,
});

describe('analyseAttempts', () => {
  test('quotes the server without control characters, residue of a cut escape sequence, or a trailing CR/LF as a space', () => {
    const text = `${'x'.repeat(118)}\u001b[31mred\u001b[0m\u0007\r\n`;
    const lines = analyseAttempts([attempt(1, { cause: 'not-ssh', bytesBeforeBanner: text.length, preBannerText: text, ending: 'close' })]);
    expect(lines[0]).toBe(`the server's own words before dropping the connection: "${'x'.repeat(118)}re"`);
    // eslint-disable-next-line no-control-regex
    expect(lines.join('\n')).not.toMatch(/[\u0000-\u001f[]/);
  });

  test('the same words over CR/LF and LF are quoted once', () => {
    const lines = analyseAttempts([
      attempt(1, { cause: 'throttled-by-server', bytesBeforeBanner: 22, preBannerText: 'Exceeded MaxStartups\r\n', ending: 'close' }),
      attempt(2, { cause: 'throttled-by-server', bytesBeforeBanner: 21, preBannerText: 'Exceeded MaxStartups\n', ending: 'reset' }),
    ]);
    expect(lines[0]).toBe('the server\'s own words before dropping the connection: "Exceeded MaxStartups"');
    expect(lines[1]).toMatch(/^"Exceeded MaxStartups" means sshd had too many unauthenticated connections/);
  });

  test('a close right after server text is not counted as a clean FIN', () => {
    const lines = analyseAttempts([
      attempt(1, { cause: 'throttled-by-server', bytesBeforeBanner: 22, preBannerText: 'Exceeded MaxStartups\r\n', ending: 'close' }),
      attempt(2, { cause: 'reset-before-banner', bytesBeforeBanner: 0, ending: 'reset' }),
      attempt(3, { cause: 'closed-before-banner', bytesBeforeBanner: 0, ending: 'close' }),
    ]);
    expect(lines).toContain(
      "endings before the banner: 1 reset (RST), 1 clean close (FIN), 1 end of stream right after the server's text (FIN or RST: indistinguishable once text arrived)",
    );
  });

  test('zero-byte closes only: no mention of text', () => {
    const lines = analyseAttempts([1, 2].map((n) => attempt(n, { cause: 'closed-before-banner', bytesBeforeBanner: 0, ending: 'close' })));
    expect(lines).toContain('endings before the banner: 0 reset (RST), 2 clean close (FIN)');
  });
});
