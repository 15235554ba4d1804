// Public surface of the host key module: fingerprints, known_hosts, and the pinning decision.
export { fingerprint, keyType, normalizeFingerprint } from './fingerprint.js';
export {
  entryMatches,
  formatKnownHostsLine,
  hashKnownHostsName,
  lookupHost,
  parseKnownHosts,
  type HostLookup,
  type KnownHostsEntry,
  type KnownHostsMarker,
  type ParsedKnownHosts,
} from './known-hosts.js';
export { knownHostsName } from './pattern.js';
export {
  appendKnownHost,
  decideHostKey,
  hostKeyAlgorithms,
  type HostKeyDecision,
  type HostKeyDetails,
  type HostKeyPins,
  type HostKeyRefusalCode,
  type PinnedKeyInfo,
} from './policy.js';
