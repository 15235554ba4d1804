// Test harness entry point: private sshd, fault-injecting proxy and small loopback listeners.
export * from './sshd.js';
export * from './sshd-keys.js';
export type { AuthEvent } from './sshd-process.js';
export * from './fault-plan.js';
export * from './fault-records.js';
export * from './fault-proxy.js';
export * from './listeners.js';
export * from './procs.js';
export * from './latency-proxy.js';
