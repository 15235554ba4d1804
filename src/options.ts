// Every command-line option, declared once: the yargs definition, the SAFE_SCP_* twins, RawOptions, the copy
// from argv, the numeric/duration sets and the README table (checked by a unit test) all come from OPTIONS.

/** The OpenSSH -o options that mean something here; anything else is a usage error naming it. */
export const SSH_OPTIONS = [
  'Port', 'User', 'IdentityFile', 'ConnectTimeout', 'UserKnownHostsFile', 'StrictHostKeyChecking',
  'ProxyJump', 'ServerAliveInterval', 'ServerAliveCountMax', 'ConnectionAttempts', 'BatchMode',
  'LogLevel', 'Compression', 'HostKeyAlias', 'IdentitiesOnly', 'PreferredAuthentications',
] as const;

/**
 * How a value is read: `flag` on/off; `text` a string as typed; `list` repeatable (also newline-separated);
 * `integer` a whole number in [min, max]; `duration` 500ms/10s/2m/plain milliseconds, at least `min` ms.
 */
export type OptionValue =
  | { readonly kind: 'flag' }
  | { readonly kind: 'text' }
  | { readonly kind: 'list' }
  | { readonly kind: 'integer'; readonly min: number; readonly max: number }
  | { readonly kind: 'duration'; readonly min: number };

export interface OptionSpec {
  /** The long name; its environment twin is SAFE_SCP_<NAME> (util/env-options.ts). */
  readonly name: string;
  readonly alias?: string;
  readonly value: OptionValue;
  /** The default the resolver applies (integers and durations), or what --help says it is. */
  readonly default?: number | string;
  readonly describe: string;
  /** Read by the CLI itself, not part of RawOptions. */
  readonly cliOnly?: boolean;
}

const flag = { kind: 'flag' } as const;
const text = { kind: 'text' } as const;
const list = { kind: 'list' } as const;
const int = (min: number, max: number) => ({ kind: 'integer', min, max }) as const;
const duration = (min = 0) => ({ kind: 'duration', min }) as const;

export const OPTIONS = [
  { name: 'port', alias: 'P', value: int(1, 65535), default: 22, describe: 'remote port' },
  { name: 'identity', alias: 'i', value: list, describe: 'private key file (repeatable); SSH_PRIVATE_KEY is used too' },
  { name: 'recursive', alias: 'r', value: flag, describe: 'copy directories recursively' },
  { name: 'preserve', alias: 'p', value: flag, describe: 'keep modification times and modes' },
  { name: 'update', value: flag, describe: "skip files whose copy on the other side has the same size and mtime (rsync's quick check); copied files get the source's mtime" },
  { name: 'inplace', value: flag, describe: 'write over existing files in place like scp, for directories you cannot write to (not atomic)' },
  {
    name: 'channels',
    value: int(1, 16),
    default: 4,
    describe:
      "SFTP channels on the one connection, both ways: files and a big file's ranges are spread over them; by default opened only for over 8 MiB or 512 files and a round trip of 5 ms or more (a server with a lower MaxSessions gets fewer)",
  },
  {
    name: 'staged',
    value: flag,
    default: 'on for -r and several sources',
    describe: 'upload every file under a temporary name, then rename all in one burst (--no-staged: rename each as it arrives)',
  },
  { name: 'quiet', alias: 'q', value: flag, describe: 'print only errors, warnings and the final diagnosis: no progress, retry lines or success summary' },
  { name: 'verbose', alias: 'v', value: flag, describe: 'print each step' },
  {
    name: 'progress-interval',
    value: duration(),
    default: '10s',
    describe: 'without a terminal, print a progress line this often (0: no progress at all)',
    cliOnly: true,
  },
  { name: 'option', alias: 'o', value: list, describe: `OpenSSH option Key=Value (${SSH_OPTIONS.join(', ')})` },
  {
    name: 'ssh-config',
    alias: 'F',
    value: text,
    default: '~/.ssh/config and /etc/ssh/ssh_config',
    describe: 'ssh_config file to read instead of the default files (none: read none)',
  },
  { name: 'jump-host', alias: 'J', value: text, describe: 'jump host(s) [user@]host[:port][,...]' },
  { name: 'limit', alias: 'l', value: int(1, 100_000_000), describe: 'bandwidth limit in Kbit/s' },
  { name: 'retries', value: int(0, 100), default: 5, describe: 'extra attempts after the first for transient failures' },
  { name: 'retry-delay', value: duration(), default: '2s', describe: 'first backoff (full jitter, doubling)' },
  { name: 'retry-max-delay', value: duration(), default: '20s', describe: 'cap of any backoff' },
  { name: 'connect-timeout', value: duration(100), default: '15s', describe: 'TCP + banner + key exchange + auth, per attempt' },
  { name: 'timeout', value: duration(100), default: '30m', describe: 'deadline for the whole run' },
  { name: 'stall-timeout', value: duration(100), default: '60s', describe: 'fail a transfer that makes no progress this long' },
  { name: 'keepalive-interval', value: duration(100), default: '10s', describe: 'SSH keepalive interval' },
  { name: 'host-concurrency', value: int(1, 64), default: 1, describe: 'simultaneous connection attempts per host, across processes' },
  { name: 'host-interval', value: duration(), default: '1s', describe: 'minimum gap between connection attempts to one host (0 = none)' },
  { name: 'known-hosts', value: list, default: '~/.ssh/known_hosts', describe: 'known_hosts file (repeatable)' },
  { name: 'host-key', value: list, describe: 'pinned host key fingerprint SHA256:... (repeatable)' },
  { name: 'accept-new', value: flag, describe: 'pin a first-seen host key into the known_hosts file (explicit opt-in)' },
  { name: 'report', value: text, describe: 'write a JSON report to FILE' },
  { name: 'json', value: flag, describe: 'print the result as JSON on stdout' },
  { name: 'dry-run', value: flag, describe: 'print the plan; open no connection' },
  { name: 'state-dir', value: text, default: '$TMPDIR/safe-scp-UID', describe: 'directory for cross-process throttle state' },
  { name: 'hosts', value: text, describe: 'copy to each of these hosts: comma list or @file; the remote operand is then [user@]:path' },
  { name: 'parallel', value: int(1, 256), default: 4, describe: 'hosts in parallel with --hosts' },
] as const satisfies readonly OptionSpec[];

type Spec = (typeof OPTIONS)[number];
export type OptionName = Spec['name'];

/** `retry-max-delay` -> `retryMaxDelay`. */
type Camel<S extends string> = S extends `${infer H}-${infer T}` ? `${H}${Capitalize<Camel<T>>}` : S;
export const camel = <S extends string>(name: S): Camel<S> => name.replace(/-([a-z])/g, (_, c: string) => c.toUpperCase()) as Camel<S>;

type Typed<V> = V extends { kind: 'flag' }
  ? boolean
  : V extends { kind: 'list' }
    ? readonly string[]
    : V extends { kind: 'text' }
      ? string
      : string | number;

/** Options as the CLI (or a library caller) hands them over: strings as typed, not yet checked. */
export type RawOptions = { operands: readonly string[] } & {
  [S in Spec as S extends { cliOnly: true } ? never : Camel<S['name']>]?: Typed<S['value']> | undefined;
};

function optionSpec(name: OptionName): OptionSpec {
  return OPTIONS.find((o) => o.name === name) as OptionSpec;
}

type DefaultOf<N> = Extract<Spec, { name: N }> extends { default: infer D } ? D : never;
const defaultOf = <N extends OptionName>(name: N): DefaultOf<N> => optionSpec(name).default as DefaultOf<N>;

/** Every default in one place (CI-friendly: a few attempts over about a minute). */
export const DEFAULTS = {
  port: defaultOf('port'),
  retries: defaultOf('retries'),
  retryDelay: defaultOf('retry-delay'),
  retryMaxDelay: defaultOf('retry-max-delay'),
  connectTimeout: defaultOf('connect-timeout'),
  timeout: defaultOf('timeout'),
  stallTimeout: defaultOf('stall-timeout'),
  keepaliveInterval: defaultOf('keepalive-interval'),
  keepaliveCountMax: 3,
  hostConcurrency: defaultOf('host-concurrency'),
  hostInterval: defaultOf('host-interval'),
  parallel: defaultOf('parallel'),
} as const;

/** Long names of the options whose values are durations. */
export const DURATION_OPTIONS: readonly string[] = OPTIONS.filter((o) => o.value.kind === 'duration').map((o) => o.name);

/** The options that take a number or a duration, as written on the command line (`--timeout`, `-P`). */
export const NUMERIC_OPTIONS: ReadonlySet<string> = new Set(
  OPTIONS.filter((o) => o.value.kind === 'integer' || o.value.kind === 'duration').flatMap((o) => ['alias' in o ? [`-${o.alias}`] : [], `--${o.name}`].flat()),
);

const asList = (value: unknown): string[] | undefined =>
  value === undefined ? undefined : (Array.isArray(value) ? value : [value]).flatMap((v) => String(v).split(/\n/)).map((v) => v.trim()).filter(Boolean);
const asText = (value: unknown): string | undefined => (value === undefined || value === null ? undefined : String(value));

/** The value of one option from parsed argv (yargs' camelCase keys), converted as the table says. */
function fromArgv(argv: Readonly<Record<string, unknown>>, spec: OptionSpec): boolean | string | string[] | undefined {
  const value = argv[camel(spec.name)];
  if (spec.value.kind === 'flag') return value as boolean | undefined;
  if (spec.value.kind === 'list') return asList(value);
  return asText(value);
}

/** RawOptions from parsed argv: a loop over the table. */
export function rawOptionsFromArgv(argv: Readonly<Record<string, unknown>>, operands: readonly string[]): RawOptions {
  const raw: Record<string, unknown> = { operands };
  for (const spec of OPTIONS as readonly OptionSpec[]) if (!spec.cliOnly) raw[camel(spec.name)] = fromArgv(argv, spec);
  return raw as RawOptions;
}
