// Gathers the pins of a run: known_hosts files, SSH_KNOWN_HOSTS (text or file variable) and --host-key.
import fs from 'node:fs/promises';
import { usageError } from '../errors.js';
import { normalizeFingerprint } from './fingerprint.js';
import { parseKnownHosts, type KnownHostsEntry } from './known-hosts.js';
import type { HostKeyPins } from './policy.js';

export interface PinSources {
  readonly knownHostsFiles: readonly string[];
  readonly fingerprints: readonly string[];
  readonly env: Readonly<Record<string, string | undefined>>;
}

export interface LoadedPins {
  readonly pins: HostKeyPins;
  readonly warnings: readonly string[];
}

/** A value with no newline and no space that names an existing file is a GitLab file-type variable. */
async function knownHostsFromEnv(value: string): Promise<{ text: string; source: string }> {
  const trimmed = value.trim();
  if (!/[\s]/.test(trimmed) && trimmed.length < 4096) {
    const text = await fs.readFile(trimmed, 'utf8').catch(() => undefined);
    if (text !== undefined) return { text, source: `SSH_KNOWN_HOSTS (file ${trimmed})` };
    if (!trimmed.includes(' ')) {
      throw usageError(`SSH_KNOWN_HOSTS is neither known_hosts text nor a readable file: "${trimmed.slice(0, 60)}"`);
    }
  }
  return { text: value, source: 'SSH_KNOWN_HOSTS' };
}

export async function loadPins(sources: PinSources): Promise<LoadedPins> {
  const entries: KnownHostsEntry[] = [];
  const warnings: string[] = [];
  const read: string[] = [];
  const add = (text: string, source: string): void => {
    const parsed = parseKnownHosts(text, source);
    entries.push(...parsed.entries);
    warnings.push(...parsed.warnings);
    read.push(source);
  };
  const envValue = sources.env['SSH_KNOWN_HOSTS'];
  if (envValue && envValue.trim()) {
    const { text, source } = await knownHostsFromEnv(envValue);
    add(text, source);
  }
  for (const file of sources.knownHostsFiles) {
    const text = await fs.readFile(file, 'utf8').catch(() => undefined);
    if (text === undefined) warnings.push(`known_hosts file ${file} does not exist or cannot be read`);
    else add(text, file);
  }
  const fingerprints = sources.fingerprints.map((fp) => {
    try {
      return normalizeFingerprint(fp);
    } catch (err: unknown) {
      throw usageError(`\`--host-key\`: ${err instanceof Error ? err.message : String(err)}`);
    }
  });
  return { pins: { entries, fingerprints, sources: read }, warnings };
}
