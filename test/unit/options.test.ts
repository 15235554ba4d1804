import fs from 'node:fs';
import { OPTIONS, type OptionSpec } from '../../src/options.js';
import { envTwin } from '../../src/util/env-options.js';

// The README's options table, as rows of cells (backticks dropped).
function readmeRows(): string[][] {
  const readme = fs.readFileSync(new URL('../../README.md', import.meta.url), 'utf8').split('\n');
  const start = readme.findIndex((l) => l.startsWith('| option | env twin | default |'));
  expect(start).toBeGreaterThan(0);
  const rows: string[][] = [];
  for (const line of readme.slice(start + 2)) {
    if (!line.startsWith('|')) break;
    rows.push(line.split(/(?<!\\)\|/).slice(1, -1).map((c) => c.trim().replace(/`/g, '')));
  }
  return rows;
}

function specOf(flags: string): OptionSpec | undefined {
  const long = /--([a-z][a-z-]*)/.exec(flags)?.[1];
  const short = /(?:^|\s)-([A-Za-z])\b/.exec(flags)?.[1];
  return (OPTIONS as readonly OptionSpec[]).find((o) => (long !== undefined ? o.name === long : o.alias === short));
}

const rows = readmeRows();

test('every row of the README options table is an option of the table, with its env twin and default', () => {
  for (const [flags = '', twin, readmeDefault] of rows) {
    const spec = specOf(flags);
    expect({ flags, known: spec !== undefined }).toEqual({ flags, known: true });
    if (spec === undefined) continue;
    expect({ flags, twin }).toEqual({ flags, twin: envTwin(spec.name) });
    if (spec.alias !== undefined) expect(flags).toContain(`-${spec.alias}`);
    const expected = spec.default !== undefined ? [String(spec.default)] : spec.value.kind === 'flag' ? ['off'] : ['–', 'none'];
    expect({ flags, default: expected.includes(readmeDefault ?? '') ? 'ok' : readmeDefault }).toEqual({ flags, default: 'ok' });
  }
});

test('every option of the table has a row in the README', () => {
  const documented = rows.map(([flags = '']) => specOf(flags)?.name);
  expect(OPTIONS.map((o) => o.name).filter((name) => !documented.includes(name))).toEqual([]);
});
