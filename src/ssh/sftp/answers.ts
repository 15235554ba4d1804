// Reading the server's answer to one request: the STATUS, or the value a request expects (HANDLE, ATTRS, NAME),
// each handed to the request's callback. An answer of the wrong type is a ProtocolError (thrown: the session fails).
import { FXP, type FileEntry, ProtocolError, type Reader, STATUS, type Stats, statusError } from './wire.js';

export type Done = (err: Error | null) => void;
export type Got<T> = (err: Error | null, value?: T) => void;
/** Reads one answer (its type and the fields after the request id) and calls the request's callback. */
export type Answer = (type: number, r: Reader) => void;

export function status(cb: Done): Answer {
  return (type, r) => {
    if (type !== FXP.STATUS) throw new ProtocolError(`expected STATUS, got packet type ${type}`);
    const code = r.uint32();
    if (code === STATUS.OK) return cb(null);
    const message = r.left >= 4 ? r.string() : '';
    cb(statusError(code, message));
  };
}

export function handle(cb: Got<Buffer>): Answer {
  return (type, r) => (type === FXP.HANDLE ? cb(null, Buffer.from(r.bytes())) : status(okIsError(cb))(type, r));
}

export function attrs(cb: Got<Stats>): Answer {
  return (type, r) => (type === FXP.ATTRS ? cb(null, r.attrs()) : status(okIsError(cb))(type, r));
}

/** DATA for a READ of `len` bytes, copied into `buf` at `off`; EOF comes as a STATUS (an error with code 1). */
export function data(buf: Buffer, off: number, len: number, cb: Got<number>): Answer {
  return (type, r) => {
    if (type !== FXP.DATA) return status(cb)(type, r);
    const bytes = r.bytes();
    if (bytes.length > len) throw new ProtocolError(`READ of ${len} bytes answered with ${bytes.length}`);
    bytes.copy(buf, off);
    cb(null, bytes.length);
  };
}

/** The statvfs@openssh.com answer's fields, in order. */
const STATVFS = ['f_bsize', 'f_frsize', 'f_blocks', 'f_bfree', 'f_bavail', 'f_files', 'f_ffree', 'f_favail', 'f_fsid', 'f_flag', 'f_namemax'] as const;

export function statvfsFields(cb: Got<Record<string, number>>): Answer {
  return (type, r) => {
    if (type !== FXP.EXTENDED_REPLY) return status(cb)(type, r);
    cb(null, Object.fromEntries(STATVFS.map((field) => [field, r.uint64()])));
  };
}

export function names(cb: Got<FileEntry[]>): Answer {
  return (type, r) => {
    if (type !== FXP.NAME) return status(okIsError(cb))(type, r);
    const list: FileEntry[] = [];
    for (let n = r.uint32(); n > 0; n--) list.push({ filename: r.string(), longname: r.string(), attrs: r.attrs() });
    cb(null, list);
  };
}

/** A STATUS OK where a value was due breaks the protocol (thrown: the session fails, this request first). */
function okIsError<T>(cb: Got<T>): Done {
  return (err) => {
    if (!err) throw new ProtocolError('STATUS OK where a value was due');
    cb(err);
  };
}
