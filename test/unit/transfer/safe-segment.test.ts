// Names from a server's directory listing: only one ordinary path segment is used (download.ts).
import { safeSegment } from '../../../src/transfer/download.js';

describe('safeSegment', () => {
  test.each(['ok.txt', '.hidden', '..dots..', 'é日本', 'a b', '-rf'])('%j is used', (name) => {
    expect(safeSegment(name)).toBe(true);
  });

  test.each(['', '.', '..', '../x', 'a/b', '/etc/passwd', 'x\\y', 'nul\0x', 'line\nbreak', 'cr\r', 'esc\u001b[31m', 'del\u007f', 'c1\u009b'])('%j is refused', (name) => {
    expect(safeSegment(name)).toBe(false);
  });
});
