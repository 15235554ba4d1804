// The bundle's stand-in for string-width measures what yargs measures (help text) as the real package does.
import realStringWidth from 'string-width';
import stringWidth from '../../../scripts/string-width.mjs';

const SAMPLES = [
  '',
  'plain ASCII help text, 80 columns or so',
  '  --retry-max-delay  cap of any backoff  [string] [default: 20s]',
  '\u001b[1mbold\u001b[22m and \u001b[31mred\u001b[39m',
  'tab\there',
  'café naïve résumé',
  'e\u0301 combining accent',
  '日本語のテキスト',
  '한국어 텍스트',
  'ｆｕｌｌｗｉｄｔｈ',
  'emoji 🚀 and ✅',
  'zero\u200bwidth\u200dspace',
];

describe('string-width stand-in', () => {
  test.each(SAMPLES)('%j has the same width as string-width says', (sample) => {
    expect(stringWidth(sample)).toBe(realStringWidth(sample));
  });

  test('non-strings are 0, ANSI codes count when asked', () => {
    expect(stringWidth(undefined as unknown as string)).toBe(0);
    expect(stringWidth('\u001b[31mx\u001b[39m', { countAnsiEscapeCodes: true })).toBe(realStringWidth('\u001b[31mx\u001b[39m', { countAnsiEscapeCodes: true }));
  });
});
