// What a fault proxy does to each connection: the fault kinds and points, the plan (schedule) and its decisions.

/** `reset`: RST (resetAndDestroy). `close`: FIN (clean end). `hang`: never forward or answer again. */
export type FaultKind = 'reset' | 'close' | 'hang';
/**
 * `before-banner`: on accept, before connecting upstream. `after-banner`: after forwarding the server's first
 * line. `mid-kex`: after `afterBytes` bytes from the server. `mid-transfer`: after `afterBytes` bytes uploaded.
 */
export type FaultPoint = 'before-banner' | 'after-banner' | 'mid-kex' | 'mid-transfer';

export interface FaultSpec {
  kind: FaultKind;
  /** Default 'before-banner'. */
  at?: FaultPoint;
  /**
   * before-banner only: text written to the client first, e.g. 'Exceeded MaxStartups\r\n' (with `reset`: the
   * notice, then RST at once, as sshd 9.2 does when it drops a connection past MaxStartups).
   */
  notice?: string;
  /**
   * before-banner only: act exactly this many ms after accept, with the client's ident left unread (recipe D').
   * Default: act as soon as the client's first bytes (its SSH ident) arrived, at most 1000 ms after accept.
   * Waiting for the ident makes the outcome deterministic: an RST that arrives before the client's connect()
   * completed surfaces in Node as 'connect ECONNRESET' (seen 10/10 with delayMs 0) instead of a read error.
   */
  delayMs?: number;
  /** mid-kex: bytes from the server (default 1000); mid-transfer: bytes from the client (default 32 MiB). */
  afterBytes?: number;
  /**
   * `reset` only: ms between the last byte forwarded to the client (banner, partial KEX, notice) and the RST.
   * Default 50 for after-banner / mid-kex / mid-transfer, 0 for before-banner. Why: when data and the RST reach a
   * Node client in the same poll round, libuv reports a plain EOF ('end', no ECONNRESET); the settle time lets
   * the client read the data first, so it then sees ECONNRESET. With 0, ssh2 mostly sees a FIN-shaped close.
   */
  settleMs?: number;
}

/** A fault with every default filled in (`delayMs` absent = wait for the client's first bytes). */
export interface ResolvedFault {
  kind: FaultKind;
  at: FaultPoint;
  notice?: string;
  delayMs?: number;
  afterBytes: number;
  settleMs: number;
}

export type PatternStep = 'pass' | FaultKind | FaultSpec;

/**
 * Which connections get a fault. Counting restarts at 0 on every setPlan(). At most one schedule:
 * - `failFirst: N`: connections 1..N get `fault`, the rest pass;
 * - `rate: 0.3` (+ `seed`): each connection gets `fault` with that probability, from a seeded PRNG (mulberry32);
 * - `pattern: [...]`: step i applies to connection i ('reset' | 'close' | 'hang' take `fault`'s point and options);
 *   after the last step everything passes, unless `repeat`;
 * - none of these: every connection gets `fault` if given, else every connection passes.
 */
export interface FaultPlan {
  /** The fault to apply. Default { kind: 'reset', at: 'before-banner' }. */
  fault?: FaultSpec | FaultKind;
  failFirst?: number;
  rate?: number;
  seed?: number;
  pattern?: PatternStep[];
  repeat?: boolean;
}

const DEFAULT_MID_KEX_BYTES = 1000;
const DEFAULT_MID_TRANSFER_BYTES = 32 * 1024 * 1024;
const DEFAULT_SETTLE_MS = 50;

/** Deterministic 32-bit PRNG (mulberry32): returns a function yielding floats in [0, 1). */
export function mulberry32(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function resolveFault(spec: FaultSpec | FaultKind | undefined, kindOverride?: FaultKind): ResolvedFault {
  const base: FaultSpec = spec === undefined ? { kind: 'reset' } : typeof spec === 'string' ? { kind: spec } : spec;
  const at = base.at ?? 'before-banner';
  const resolved: ResolvedFault = {
    kind: kindOverride ?? base.kind,
    at,
    afterBytes: base.afterBytes ?? (at === 'mid-transfer' ? DEFAULT_MID_TRANSFER_BYTES : DEFAULT_MID_KEX_BYTES),
    settleMs: base.settleMs ?? (at === 'before-banner' ? 0 : DEFAULT_SETTLE_MS),
  };
  if (base.delayMs !== undefined) resolved.delayMs = base.delayMs;
  if (base.notice !== undefined) resolved.notice = base.notice;
  return resolved;
}

export function validatePlan(plan: FaultPlan): void {
  const schedules = [plan.failFirst !== undefined, plan.rate !== undefined, plan.pattern !== undefined].filter(Boolean).length;
  if (schedules > 1) throw new Error('FaultPlan: use at most one of failFirst, rate, pattern');
  if (plan.rate !== undefined && !(plan.rate >= 0 && plan.rate <= 1)) throw new Error('FaultPlan: rate must be in [0, 1]');
  if (plan.failFirst !== undefined && !(plan.failFirst >= 0)) throw new Error('FaultPlan: failFirst must be >= 0');
}

/** Turns a plan into a per-connection decision function (stateful: call once per connection, in order). */
export function planDecider(plan: FaultPlan): () => ResolvedFault | undefined {
  validatePlan(plan);
  let index = 0;
  const random = mulberry32(plan.seed ?? 1);
  return () => {
    const i = index++;
    if (plan.failFirst !== undefined) return i < plan.failFirst ? resolveFault(plan.fault) : undefined;
    if (plan.rate !== undefined) return random() < plan.rate ? resolveFault(plan.fault) : undefined;
    if (plan.pattern !== undefined) {
      const length = plan.pattern.length;
      if (length === 0 || (i >= length && plan.repeat !== true)) return undefined;
      const step = plan.pattern[i % length];
      if (step === undefined || step === 'pass') return undefined;
      return typeof step === 'string' ? resolveFault(plan.fault, step) : resolveFault(step);
    }
    return plan.fault === undefined ? undefined : resolveFault(plan.fault);
  };
}

/** The decisions a plan makes for its first `count` connections (undefined = pass). */
export function previewPlan(plan: FaultPlan, count: number): Array<ResolvedFault | undefined> {
  const decide = planDecider(plan);
  return Array.from({ length: Math.max(0, Math.min(count, 1_000_000)) }, () => decide());
}
