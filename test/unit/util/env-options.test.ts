// The SAFE_SCP_* namespace: only twins of known options are read; others warn (with a suggestion), never fail.
import { bareDurationWarnings, envTwin, readEnvOptions } from '../../../src/util/env-options.js';
import { closest, editDistance, unknownOptionsMessage } from '../../../src/util/suggest.js';

const OPTIONS = ['port', 'recursive', 'retries', 'retry-delay', 'retry-max-delay', 'connect-timeout', 'timeout', 'host-interval', 'json', 'dry-run', 'progress-interval', 'hosts'];
const BOOLEANS = ['recursive', 'json', 'dry-run'];

describe('readEnvOptions', () => {
  test('maps SAFE_SCP_<OPTION> to its long option and ignores other variables', () => {
    const { values, warnings, errors } = readEnvOptions({ SAFE_SCP_RETRY_DELAY: '2s', SAFE_SCP_PORT: '2402', HOME: '/home/x', SAFESCP_SOURCE: 'dist' }, OPTIONS);
    expect(values).toEqual({ 'retry-delay': '2s', port: '2402' });
    expect(warnings).toEqual([]);
    expect(errors).toEqual([]);
  });

  test('a project variable in the namespace is a warning naming it, not an option', () => {
    const { values, warnings, errors } = readEnvOptions({ SAFE_SCP_DST: '/srv/app', SAFE_SCP_RETRIES: '3' }, OPTIONS);
    expect(values).toEqual({ retries: '3' });
    expect(errors).toEqual([]);
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toContain('SAFE_SCP_DST');
    // DST is close to nothing: no made-up suggestion.
    expect(warnings[0]).not.toContain('did you mean');
  });

  test('a typo suggests the closest option variable', () => {
    const { values, warnings } = readEnvOptions({ SAFE_SCP_RETRYS: '3', SAFE_SCP_CONECT_TIMEOUT: '5s' }, OPTIONS);
    expect(values).toEqual({});
    expect(warnings.join('\n')).toContain('ignoring SAFE_SCP_RETRYS: not an option of safe-scp; did you mean SAFE_SCP_RETRIES?');
    expect(warnings.join('\n')).toContain('did you mean SAFE_SCP_CONNECT_TIMEOUT?');
  });

  test('an empty variable counts as unset (CI templates set every variable)', () => {
    expect(readEnvOptions({ SAFE_SCP_HOSTS: '', SAFE_SCP_RECURSIVE: '' }, OPTIONS, BOOLEANS).values).toEqual({});
  });

  test('on/off twins accept true/false, 1/0, yes/no, on/off and refuse anything else, naming the variable', () => {
    const ok = readEnvOptions({ SAFE_SCP_RECURSIVE: 'yes', SAFE_SCP_JSON: '0', SAFE_SCP_DRY_RUN: 'TRUE' }, OPTIONS, BOOLEANS);
    expect(ok.values).toEqual({ recursive: 'true', json: 'false', 'dry-run': 'true' });
    const bad = readEnvOptions({ SAFE_SCP_JSON: 'maybe' }, OPTIONS, BOOLEANS);
    expect(bad.errors).toEqual(['SAFE_SCP_JSON must be true or false (also 1/0, yes/no, on/off), got "maybe"']);
  });

  test('envTwin spells the variable of a long option', () => {
    expect(envTwin('retry-max-delay')).toBe('SAFE_SCP_RETRY_MAX_DELAY');
  });
});

describe('bareDurationWarnings', () => {
  test('a plain number below 100 for a duration is said to be milliseconds', () => {
    expect(bareDurationWarnings({ 'retry-delay': '2' })).toEqual([
      'safe-scp: warning: --retry-delay (SAFE_SCP_RETRY_DELAY) 2 is read as 2 milliseconds; write 2s for seconds',
    ]);
  });

  test('0, 100 and more, and values with a unit are not warned about', () => {
    expect(bareDurationWarnings({ 'host-interval': '0', timeout: '1500', 'connect-timeout': '5s', 'retry-delay': '100', port: '22' })).toEqual([]);
  });
});

describe('suggestions', () => {
  test('edit distance counts a swap of neighbours as one edit', () => {
    expect(editDistance('recursive', 'recursive')).toBe(0);
    expect(editDistance('recursve', 'recursive')).toBe(1);
    expect(editDistance('retires', 'retries')).toBe(1);
  });

  test('closest gives up when nothing is close', () => {
    expect(closest('recursve', OPTIONS)).toBe('recursive');
    expect(closest('zzz', OPTIONS)).toBeUndefined();
  });

  test("yargs' unknown-argument message becomes one that names the flag and suggests the closest", () => {
    expect(unknownOptionsMessage('Unknown argument: recursve', OPTIONS)).toBe('unknown option --recursve (did you mean --recursive?)');
    expect(unknownOptionsMessage('Unknown arguments: x, retry-dealy', OPTIONS)).toBe('unknown option -x; unknown option --retry-dealy (did you mean --retry-delay?)');
    expect(unknownOptionsMessage('Not enough arguments', OPTIONS)).toBeUndefined();
  });
});
