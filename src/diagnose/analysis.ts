// Reasoning across attempts: a standing block and a momentary overload look alike in one attempt, not in several.
import { stripControl } from '../classify.js';
import type { AttemptEvidence } from '../log/events.js';

const BEFORE_BANNER = new Set(['reset-before-banner', 'closed-before-banner', 'throttled-by-server']);

/** The attempts that concern the failing host (all of them when the error names no host). */
export function attemptsForHost(attempts: readonly AttemptEvidence[], host: string | undefined): AttemptEvidence[] {
  return attempts.filter((a) => host === undefined || a.host === host);
}

/** Short conclusions drawn from all attempts to one host; empty when there is nothing to add. */
export function analyseAttempts(attempts: readonly AttemptEvidence[]): string[] {
  const failed = attempts.filter((a) => a.cause !== undefined);
  if (failed.length === 0) return [];
  const lines: string[] = [];
  const early = failed.filter((a) => a.cause && BEFORE_BANNER.has(a.cause));
  const succeededOrBanner = attempts.filter((a) => a.cause === undefined || a.serverVersion !== undefined);
  // Raw server text: strip control characters before trimming and cutting, or an escape sequence cut in half
  // leaves residue ("[31") and a trailing CR/LF becomes a trailing space.
  const said = [...new Set(failed.map((a) => stripControl(a.preBannerText ?? '').trim()).filter(Boolean))];

  if (said.length > 0) lines.push(`the server's own words before dropping the connection: ${said.map((t) => `"${t.slice(0, 120)}"`).join(', ')}`);
  if (said.some((t) => /MaxStartups/i.test(t))) {
    lines.push('"Exceeded MaxStartups" means sshd had too many unauthenticated connections at that moment: other jobs, scanners or a burst from this runner; raise MaxStartups or spread the connections (--host-concurrency 1, --host-interval)');
  }
  if (early.length > 0 && early.length === failed.length && succeededOrBanner.length === 0) {
    const allReset = early.every((a) => a.ending === 'reset' || a.cause === 'reset-before-banner');
    const slow = early.filter((a) => a.durationMs >= 2000);
    const zeroBytes = early.every((a) => (a.bytesBeforeBanner ?? 0) === 0);
    if (early.length >= 2 && zeroBytes) {
      lines.push(
        `all ${early.length} attempts were refused before the SSH version string${allReset ? ' with a reset' : ''}: a standing block (hosts.deny, a fail2ban/DenyHosts ban of the runner's address, a firewall rule) is more likely than a momentary overload; check those first`,
      );
    } else if (early.length === 1) {
      lines.push('only one attempt was made: run with more --retries to tell a standing block from a momentary overload');
    }
    if (slow.length > 0 && slow.length === early.length) {
      lines.push(`each refusal took ${Math.round((slow[0]?.durationMs ?? 0) / 100) / 10}s or more: TCP wrappers (hosts.deny) doing a slow reverse DNS lookup before refusing fit this pattern`);
    }
  } else if (early.length > 0 && succeededOrBanner.length > 0) {
    lines.push(
      `${early.length} of ${attempts.length} attempts were refused before the SSH version string while others got through: an intermittent limit (sshd MaxStartups or PerSourcePenalties, or a rate-limiting firewall) under bursts of connections`,
    );
  }
  const resets = early.filter((a) => a.ending === 'reset').length;
  const closes = early.filter((a) => a.ending === 'close').length;
  // After text from the server a close is ambiguous (an RST arriving with the text is reported as a plain end of stream).
  const closesAfterText = early.filter((a) => a.ending === 'close' && (a.bytesBeforeBanner ?? 0) > 0).length;
  if (resets + closes > 0 && early.length > 0) {
    lines.push(
      `endings before the banner: ${resets} reset (RST), ${closes - closesAfterText} clean close (FIN)` +
        (closesAfterText > 0 ? `, ${closesAfterText} end of stream right after the server's text (FIN or RST: indistinguishable once text arrived)` : ''),
    );
  }
  const midTransfer = failed.filter((a) => a.cause === 'connection-lost-mid-transfer' || a.cause === 'stalled').length;
  if (midTransfer >= 2) lines.push(`${midTransfer} attempts lost the connection mid-transfer: look at the network path (MTU, idle or volume limits on firewalls/NAT) rather than sshd`);
  return lines;
}
