// Stand-in for the `string-width` package inside the bundled CLI (scripts/bundle.mjs). The real one builds an
// Intl.Segmenter and large Unicode-property regexes when it is loaded, about 60 ms of every start, only for
// yargs to measure help text. This one measures the same for ASCII and common wide text: ANSI codes and
// combining or zero-width characters count 0, East Asian wide/fullwidth characters and emoji count 2.
import { stripVTControlCharacters } from 'node:util';

const ZERO = /^[\p{Mn}\p{Me}\p{Cc}\p{Cf}]$/u;
const WIDE =
  /^[\u{1100}-\u{115F}\u{231A}\u{231B}\u{2329}\u{232A}\u{23E9}-\u{23EC}\u{23F0}\u{23F3}\u{25FD}\u{25FE}\u{2614}\u{2615}\u{2648}-\u{2653}\u{267F}\u{2693}\u{26A1}\u{26AA}\u{26AB}\u{26BD}\u{26BE}\u{26C4}\u{26C5}\u{26CE}\u{26D4}\u{26EA}\u{26F2}\u{26F3}\u{26F5}\u{26FA}\u{26FD}\u{2705}\u{270A}\u{270B}\u{2728}\u{274C}\u{274E}\u{2753}-\u{2755}\u{2757}\u{2795}-\u{2797}\u{27B0}\u{27BF}\u{2B1B}\u{2B1C}\u{2B50}\u{2B55}\u{2E80}-\u{303E}\u{3041}-\u{33FF}\u{3400}-\u{4DBF}\u{4E00}-\u{9FFF}\u{A000}-\u{A4CF}\u{A960}-\u{A97F}\u{AC00}-\u{D7A3}\u{F900}-\u{FAFF}\u{FE10}-\u{FE19}\u{FE30}-\u{FE6F}\u{FF00}-\u{FF60}\u{FFE0}-\u{FFE6}\u{1F004}\u{1F0CF}\u{1F18E}\u{1F191}-\u{1F19A}\u{1F200}-\u{1F251}\u{1F300}-\u{1F64F}\u{1F680}-\u{1F6FF}\u{1F900}-\u{1F9FF}\u{1FA70}-\u{1FAFF}\u{20000}-\u{3FFFD}]$/u;

export default function stringWidth(text, options = {}) {
  if (typeof text !== 'string' || text.length === 0) return 0;
  const visible = options.countAnsiEscapeCodes ? text : stripVTControlCharacters(text);
  let width = 0;
  for (const ch of visible) {
    const code = ch.codePointAt(0) ?? 0;
    if (code >= 0x20 && code < 0x7f) width += 1;
    else if (ZERO.test(ch) || code === 0x200d || (code >= 0xfe00 && code <= 0xfe0f)) continue;
    else width += WIDE.test(ch) ? 2 : 1;
  }
  return width;
}
