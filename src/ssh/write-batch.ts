// Gathers the SSH packets that one turn of the event loop writes into one system call. ssh2 writes every packet on
// its own (a write each: for a tree of small files, the largest single cost in the client's CPU profile); the
// socket is corked at the first SFTP request of a turn and uncorked once that turn's I/O callbacks and promise
// reactions have run (setImmediate), so nothing waits longer than the turn that wrote it. Only the socket's own
// public cork()/uncork(): ssh2's writes go through untouched.
import type { Writable } from 'node:stream';

/** Call before sending a request: corks the socket until the end of this turn. */
export type WriteBatch = () => void;

export function writeBatcher(sock: Writable): WriteBatch {
  let corked = false;
  const flush = (): void => {
    corked = false;
    if (!sock.destroyed) sock.uncork();
  };
  return () => {
    if (corked || sock.destroyed) return;
    corked = true;
    sock.cork();
    setImmediate(flush);
  };
}
