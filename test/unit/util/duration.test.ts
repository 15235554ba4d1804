// Unit tests for durations as users write them in CI variables and as messages print them.
import { formatDuration, parseDuration } from '../../../src/util/duration.js';

describe('parseDuration', () => {
  test.each<[string | number, number]>([
    ['500ms', 500],
    ['10s', 10_000],
    ['2m', 120_000],
    ['1h', 3_600_000],
    ['1500', 1500],
    ['0', 0],
    ['1.5s', 1500],
    ['0.25m', 15_000],
    [' 30s ', 30_000],
    ['10 s', 10_000],
    ['10S', 10_000],
    ['250MS', 250],
    [2000, 2000],
    [0, 0],
  ])('%j -> %d ms', (text, ms) => {
    expect(parseDuration(text)).toBe(ms);
  });

  test.each<string | number>(['', ' ', 'abc', '-5s', '10sec', '1d', '5 minutes', 's', '.5s', '1e3', '10s5', -1, Number.NaN, Number.POSITIVE_INFINITY])(
    '%j is not a duration',
    (text) => {
      expect(parseDuration(text)).toBeUndefined();
    },
  );
});

describe('formatDuration', () => {
  test.each<[number, string]>([
    [0, '0ms'],
    [250, '250ms'],
    [999, '999ms'],
    [1000, '1s'],
    [1500, '1.5s'],
    [2000, '2s'],
    [12_345, '12.3s'],
    [60_000, '1.0m'],
    [90_000, '1.5m'],
  ])('%d ms -> %s', (ms, text) => {
    expect(formatDuration(ms)).toBe(text);
  });

  test('round-trips through parseDuration for whole seconds', () => {
    for (const ms of [1000, 5000, 20_000]) expect(parseDuration(formatDuration(ms))).toBe(ms);
  });
});
