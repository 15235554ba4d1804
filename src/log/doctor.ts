// Text for `safe-scp doctor`: one line per phase, then the cause and what to check.
import { preBannerText, stripControl } from '../classify.js';
import { CAUSE_HELP, checksFor } from '../diagnose/causes.js';
import type { DoctorReport } from '../diagnose/doctor.js';
import { section, type TextStyle } from './text.js';

export function formatDoctor(report: DoctorReport, style: TextStyle): string {
  const t = report.trace;
  const lines: string[] = [];
  const where = `${report.target.user}@${report.target.host}:${report.target.port}`;
  lines.push(`  dns:      ${t.address ? `${t.address}${t.dnsMs !== undefined ? ` (${t.dnsMs}ms)` : ' (literal address)'}` : 'not resolved'}`);
  lines.push(`  tcp:      ${t.tcpMs !== undefined ? `connected in ${t.tcpMs}ms` : 'not connected'}`);
  const pre = preBannerText(t);
  lines.push(`  banner:   ${t.serverVersion ? stripControl(t.serverVersion) : 'none received'}${pre ? `; before it the server said "${pre.slice(0, 200)}"` : ''}${t.ending ? ` (connection ended by ${t.ending})` : ''}`);
  if (t.algorithms) lines.push(`  kex:      ${Object.entries(t.algorithms).filter(([, v]) => v).map(([k, v]) => `${k} ${v}`).join(', ')}`);
  if (t.hostKey) lines.push(`  host key: offered ${t.hostKey.type} ${t.hostKey.fingerprint}: ${report.hostKeyVerdict}`);
  else lines.push(`  host key: ${report.hostKeyVerdict}`);
  if (report.pins.length === 0) lines.push('  pins:     none for this host (SSH_KNOWN_HOSTS, --known-hosts, --host-key)');
  for (const pin of report.pins) lines.push(`  pinned:   ${pin.type} ${pin.fingerprint} (${pin.source})`);
  lines.push(`  auth:     ${report.auth}${report.keyProblem ? ` (${stripControl(report.keyProblem)})` : ''}`);
  lines.push(`  sftp:     ${report.sftp}`);
  lines.push(`  verdict:  ${report.ok ? 'OK' : `${report.cause} (exit ${report.exitCode}): ${stripControl(report.message ?? '')}`}`);
  if (!report.ok && report.cause) {
    lines.push(`  likely:   ${CAUSE_HELP[report.cause].summary}`);
    for (const check of checksFor(report.cause, report.target)) lines.push(`    * ${check}`);
  }
  return section(style, `safe-scp doctor ${where} (one connection, ${report.durationMs}ms)`, lines);
}
