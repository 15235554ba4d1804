// Unit tests for joining option values that look like negative numbers (`--timeout -5s`) before yargs parses.
import { NUMERIC_OPTIONS } from '../../../src/options.js';
import { joinNegativeValues } from '../../../src/util/argv.js';

describe('joinNegativeValues', () => {
  test.each<[string[], string[]]>([
    [['--timeout', '-5s', 'a', 'h:b'], ['--timeout=-5s', 'a', 'h:b']],
    [['-P', '-22', 'a', 'h:b'], ['-P=-22', 'a', 'h:b']],
    [['--retry-delay', '-0.5s'], ['--retry-delay=-0.5s']],
    // Not a numeric option, not a value that starts with a digit, or after `--`: unchanged.
    [['-r', '-5dir', 'h:b'], ['-r', '-5dir', 'h:b']],
    [['--timeout', '-v'], ['--timeout', '-v']],
    [['--', '--timeout', '-5s'], ['--', '--timeout', '-5s']],
    [['--timeout'], ['--timeout']],
  ])('%j -> %j', (args, expected) => {
    expect(joinNegativeValues(args, NUMERIC_OPTIONS)).toEqual(expected);
  });
});
