// ssh2's cipher module: whether its native binding (built by ssh2's install script) was loaded.
// Without it ssh2 encrypts in JavaScript, about 40 % slower (faults-and-perf.md 3).
declare module 'ssh2/lib/protocol/crypto.js' {
  const crypto: { readonly bindingAvailable: boolean };
  export default crypto;
}
