// SSH wire-format reading for public key blobs: just enough to name and sanity-check a host key.

/** Printable ASCII without spaces: every real key type name fits, and nothing else is echoed to logs. */
const TYPE_NAME = /^[\x21-\x7e]{1,64}$/;

/** A bounds-checked cursor over a key blob; every read fails instead of reading past the end. */
class BlobReader {
  private offset = 0;

  constructor(private readonly blob: Buffer) {}

  /** An SSH `string`: uint32 length then bytes. */
  string(): Buffer {
    if (this.offset + 4 > this.blob.length) {
      throw new Error('key blob is truncated (missing length field)');
    }
    const length = this.blob.readUInt32BE(this.offset);
    const start = this.offset + 4;
    if (length > this.blob.length - start) {
      throw new Error('key blob is truncated (length field runs past the end)');
    }
    this.offset = start + length;
    return this.blob.subarray(start, start + length);
  }

  get remaining(): number {
    return this.blob.length - this.offset;
  }
}

/** The type name a blob declares about itself (its first `string`), e.g. `ssh-ed25519`. */
export function blobTypeName(blob: Buffer): string {
  const name = new BlobReader(blob).string().toString('latin1');
  if (!TYPE_NAME.test(name)) {
    // The blob comes from the server: refuse to carry control characters into messages.
    throw new Error('key blob does not start with a printable key type name');
  }
  return name;
}

/** Significant bits of an SSH `mpint` (big-endian, possibly with a leading zero byte). */
function mpintBits(value: Buffer): number {
  let start = 0;
  while (start < value.length && value[start] === 0) start += 1;
  const first = value[start];
  if (first === undefined) return 0;
  return (value.length - start - 1) * 8 + (32 - Math.clz32(first));
}

/** Uncompressed point sizes (0x04 || X || Y) per curve, as OpenSSH writes them. */
const EC_POINT_BYTES: Readonly<Record<string, number>> = {
  nistp256: 65,
  nistp384: 97,
  nistp521: 133,
};

function checkEcdsa(reader: BlobReader, curve: string): void {
  const declaredCurve = reader.string().toString('latin1');
  if (declaredCurve !== curve) {
    throw new Error(`ECDSA key declares curve ${declaredCurve} but its type says ${curve}`);
  }
  const point = reader.string();
  if (point.length !== EC_POINT_BYTES[curve] || point[0] !== 0x04) {
    throw new Error(`ECDSA ${curve} public point has the wrong size or encoding`);
  }
}

/**
 * Checks that a blob is a well-formed public key of a type OpenSSH knows, throwing with the reason
 * otherwise. OpenSSH (sshkey_from_blob) skips known_hosts lines whose key does not parse; doing the
 * same keeps our view of a file equal to ssh's. The checks are structural only: curve membership of
 * ECDSA points is not verified, which cannot matter because entries are compared byte for byte with
 * the key a server proved possession of.
 */
export function checkKeyBlob(blob: Buffer): string {
  const reader = new BlobReader(blob);
  const type = reader.string().toString('latin1');
  switch (type) {
    case 'ssh-ed25519':
      if (reader.string().length !== 32) throw new Error('Ed25519 public key must be 32 bytes');
      break;
    case 'sk-ssh-ed25519@openssh.com':
      if (reader.string().length !== 32) throw new Error('Ed25519 public key must be 32 bytes');
      reader.string(); // FIDO application string
      break;
    case 'ssh-rsa':
      reader.string(); // e
      // OpenSSH refuses RSA keys under 1024 bits (SSH_RSA_MINIMUM_MODULUS_SIZE) when reading them.
      if (mpintBits(reader.string()) < 1024) throw new Error('RSA modulus is under 1024 bits');
      break;
    case 'ssh-dss':
      for (let i = 0; i < 4; i += 1) reader.string(); // p, q, g, y
      break;
    case 'ecdsa-sha2-nistp256':
    case 'ecdsa-sha2-nistp384':
    case 'ecdsa-sha2-nistp521':
      checkEcdsa(reader, type.slice('ecdsa-sha2-'.length));
      break;
    case 'sk-ecdsa-sha2-nistp256@openssh.com':
      checkEcdsa(reader, 'nistp256');
      reader.string(); // FIDO application string
      break;
    default:
      if (CERT_TYPES.has(type)) {
        // Certificates are never offered by ssh2 and so can never match; their inner layout is
        // not worth validating beyond the type name.
        return type;
      }
      throw new Error(`unsupported key type ${JSON.stringify(type.slice(0, 64))}`);
  }
  if (reader.remaining !== 0) throw new Error(`${type} key blob has trailing bytes`);
  return type;
}

/** OpenSSH certificate key types (accepted in known_hosts, inert here: ssh2 never offers them). */
const CERT_TYPES: ReadonlySet<string> = new Set([
  'ssh-ed25519-cert-v01@openssh.com',
  'sk-ssh-ed25519-cert-v01@openssh.com',
  'ssh-rsa-cert-v01@openssh.com',
  'ssh-dss-cert-v01@openssh.com',
  'ecdsa-sha2-nistp256-cert-v01@openssh.com',
  'ecdsa-sha2-nistp384-cert-v01@openssh.com',
  'ecdsa-sha2-nistp521-cert-v01@openssh.com',
  'sk-ecdsa-sha2-nistp256-cert-v01@openssh.com',
]);

/**
 * The blob type a known_hosts key-type field stands for. OpenSSH accepts the RSA signature
 * algorithm names in that field for an `ssh-rsa` blob (sshkey_type_from_name maps them to KEY_RSA),
 * so `host rsa-sha2-512 AAAA...` is a valid line.
 */
export function blobTypeForFieldName(fieldName: string): string {
  switch (fieldName) {
    case 'rsa-sha2-256':
    case 'rsa-sha2-512':
      return 'ssh-rsa';
    case 'rsa-sha2-256-cert-v01@openssh.com':
    case 'rsa-sha2-512-cert-v01@openssh.com':
      return 'ssh-rsa-cert-v01@openssh.com';
    default:
      return fieldName;
  }
}
