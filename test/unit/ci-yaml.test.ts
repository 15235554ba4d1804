// GitLab CI YAML of the project: every document against GitLab's schema, the components' inputs and
// interpolation, every include of them, and the GitLab rules the schema does not encode.
import { execFileSync } from 'node:child_process';
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Ajv, type ValidateFunction } from 'ajv';
import {
  checkInclude,
  checkIncludes,
  componentIncludes,
  includesIn,
  interpolationProblems,
  loadTemplates,
  markdownYamlBlocks,
} from '../component/check-inputs.js';
import {
  ciSchemaPath,
  componentNames,
  GLOBAL_KEYWORDS,
  gitlabOnlyProblems,
  interpolate,
  isRecord,
  loadCiSchema,
  loadTemplate,
  parseDocuments,
  projectYamlFiles,
  readProjectFile,
  repoRoot,
  resolveInputs,
  sampleInputs,
  valueProblems,
  type ComponentTemplate,
} from '../component/ci-yaml.js';
import type { ComponentInclude } from '../component/check-inputs.js';

const DOCS = 'README.md';

let validate: ValidateFunction;
let templates: Map<string, ComponentTemplate>;

beforeAll(() => {
  // strict:false: the schema uses keywords ajv does not know (markdownDescription). Formats (uri-reference,
  // date-time) are not checked: ajv-formats is not a dependency, and the formats say nothing GitLab enforces.
  const ajv = new Ajv({ strict: false, allErrors: true, validateFormats: false });
  validate = ajv.compile(loadCiSchema());
  templates = loadTemplates(componentNames());
});

function schemaErrors(doc: unknown): string[] {
  if (validate(doc)) return [];
  return (validate.errors ?? []).map((e) => `${e.instancePath || '/'} ${e.message ?? ''} ${JSON.stringify(e.params)}`);
}

function component(name: string): ComponentTemplate {
  const template = templates.get(name);
  if (!template) throw new Error(`no templates/${name}.yml`);
  return template;
}

function job(template: ComponentTemplate, inputs: Record<string, unknown> = {}): Record<string, unknown> {
  const { values } = resolveInputs(template.inputs, { ...sampleInputs(template.inputs), ...inputs });
  const body = interpolate(template.body, values);
  if (!isRecord(body)) throw new Error(`${template.file}: the body is not a mapping`);
  const [only, ...rest] = Object.values(body);
  if (!isRecord(only) || rest.length > 0) throw new Error(`${template.file}: expected exactly one job`);
  return only;
}

function projectFilesAndDocs(): Array<readonly [string, string]> {
  return [...projectYamlFiles(), DOCS].map((file) => [file, readProjectFile(file)] as const);
}

describe('GitLab CI schema', () => {
  test('is the copy in the repository, or $GITLAB_CI_SCHEMA', () => {
    expect(path.relative(repoRoot, ciSchemaPath({}))).toBe(path.join('test', 'component', 'schema', 'ci.json'));
    expect(ciSchemaPath({ GITLAB_CI_SCHEMA: 'elsewhere/ci.json' })).toMatch(/elsewhere[/\\]ci\.json$/);
  });

  test('a missing schema is an error that says where to put it, not a skipped test', () => {
    expect(() => loadCiSchema('/nonexistent/ci.json')).toThrow(
      /GitLab's CI schema is missing: \/nonexistent\/ci\.json does not exist.*refresh-ci-schema/,
    );
  });

  test('rejects a broken job and a mistyped input default, so passing files mean something', () => {
    expect(schemaErrors({ deploy: { script: ['x'], retry: { max: 3 }, enviroment: 'production' } })).not.toEqual([]);
    expect(schemaErrors({ spec: { inputs: { port: { type: 'number', default: '22' } } } })).not.toEqual([]);
    // A known gap: GitLab 18.10 accepts spec:description, this schema does not; the templates leave it out.
    expect(schemaErrors({ spec: { description: 'x', inputs: {} } })).not.toEqual([]);
  });
});

describe('every YAML file, document by document', () => {
  const files = projectYamlFiles();

  test('covers the components, the pipeline and the scenarios', () => {
    expect(files).toEqual(expect.arrayContaining(['templates/safe-scp.yml', 'templates/safe-scp-cli.yml', '.gitlab-ci.yml']));
    expect(files.some((f) => f.startsWith('test/component/'))).toBe(true);
    // GitLab only finds components named templates/<name>.yml.
    expect(files.filter((f) => f.startsWith('templates/') && !f.endsWith('.yml'))).toEqual([]);
  });

  test.each(files)('%s', (file) => {
    const docs = parseDocuments(readProjectFile(file));
    expect(docs.length).toBeGreaterThan(0);
    if (file.startsWith('templates/')) {
      // Document 1 is the spec header: the schema checks it through its root `spec` property.
      expect(docs).toHaveLength(2);
      expect(Object.keys(docs[0] as object)).toEqual(['spec']);
      expect(schemaErrors(docs[0])).toEqual([]);
      // Document 2 holds whole-value blocks such as `rules: $[[ inputs.rules ]]`, which only have their type
      // once interpolated, so it is validated as GitLab sees it: with the defaults filled in.
      const template = component(file.replace(/^templates\/(.*)\.yml$/, '$1'));
      const { values, problems } = resolveInputs(template.inputs, sampleInputs(template.inputs));
      expect(problems).toEqual([]);
      const body = interpolate(docs[1], values);
      expect(schemaErrors(body)).toEqual([]);
      expect(gitlabOnlyProblems(body)).toEqual([]);
    } else {
      for (const doc of docs) {
        expect(schemaErrors(doc)).toEqual([]);
        expect(gitlabOnlyProblems(doc)).toEqual([]);
      }
    }
  });

  test.each(markdownYamlBlocks(readProjectFile(DOCS)).map((block, i) => [i + 1, block] as const))(
    `${DOCS} yaml block %i`,
    (_i, block) => {
      for (const doc of parseDocuments(block)) expect(schemaErrors(doc)).toEqual([]);
    },
  );
});

describe('component templates', () => {
  test.each(componentNames())('%s: every input has a description, and its default fits its own type, options and regex', (name) => {
    for (const [input, spec] of Object.entries(component(name).inputs)) {
      expect([input, typeof spec.description]).toEqual([input, 'string']);
      if (spec.default !== undefined) expect(valueProblems(input, spec, spec.default)).toEqual([]);
      if (spec.options) expect([input, spec.options.every((o) => typeof o === 'string' || typeof o === 'number')]).toEqual([input, true]);
    }
  });

  test.each(componentNames())('%s: every $[[ inputs.x ]] is declared, and every declared input is used', (name) => {
    expect(interpolationProblems(component(name))).toEqual([]);
  });

  test.each(componentNames())('%s: no global keywords, one job, no ssh-keyscan, no disabled host-key checking', (name) => {
    const template = component(name);
    expect(Object.keys(template.body as object).filter((key) => GLOBAL_KEYWORDS.includes(key))).toEqual([]);
    const scripts = JSON.stringify([job(template)['script'], job(template)['before_script']]);
    expect(scripts).not.toMatch(/ssh-keyscan|StrictHostKeyChecking|\beval\b/);
  });

  test.each(componentNames())('%s: only exit code 75 re-runs the job, and the report, named after the job, is kept whatever happens', (name) => {
    const built = job(component(name));
    expect(built['retry']).toEqual({ max: 1, exit_codes: [75] });
    expect(built['artifacts']).toEqual({ when: 'always', expire_in: '30 days', paths: ['safe-scp-report-$CI_JOB_NAME_SLUG.json'] });
    expect(built['variables']).toMatchObject({ SAFE_SCP_REPORT: 'safe-scp-report-$CI_JOB_NAME_SLUG.json' });
    const named = job(component(name), { report: 'reports/deploy.json', 'expire-in': '1 week' });
    expect(named['artifacts']).toEqual({ when: 'always', expire_in: '1 week', paths: ['reports/deploy.json'] });
    expect(named['variables']).toMatchObject({ SAFE_SCP_REPORT: 'reports/deploy.json' });
  });

  test.each(componentNames())('%s: report and expire-in reject what GitLab or the shell would misread', (name) => {
    const { inputs } = component(name);
    for (const ok of ['safe-scp-report.json', 'out/r-${CI_JOB_ID}.json']) expect(valueProblems('report', inputs['report'] ?? {}, ok)).toEqual([]);
    for (const bad of ['-r.json', 'a b.json', '/etc/x', '']) expect([bad, valueProblems('report', inputs['report'] ?? {}, bad)]).not.toEqual([bad, []]);
    for (const ok of ['30 days', '1 week', 'never', '2h20min', '6 mos 1 day', '3 weeks and 2 days']) {
      expect([ok, valueProblems('expire-in', inputs['expire-in'] ?? {}, ok)]).toEqual([ok, []]);
    }
    for (const bad of ['30', '', 'forever and ever']) expect([bad, valueProblems('expire-in', inputs['expire-in'] ?? {}, bad)]).not.toEqual([bad, []]);
  });

  test.each(componentNames())('%s: duration inputs need a unit, so a bare number fails at pipeline creation', (name) => {
    const { inputs } = component(name);
    for (const input of ['retry-delay', 'retry-max-delay', 'connect-timeout', 'timeout', 'host-interval']) {
      const spec = inputs[input] ?? {};
      for (const ok of ['500ms', '15s', '1.5m', '2h', '0']) expect([input, ok, valueProblems(input, spec, ok)]).toEqual([input, ok, []]);
      for (const bad of ['15', '15 s', '1d', '-1s', '']) expect([input, bad, valueProblems(input, spec, bad)]).not.toEqual([input, bad, []]);
    }
  });

  test.each(componentNames())('%s: runs in safe-scp\'s image at the package version, npm only as a fallback', (name) => {
    const pkg = JSON.parse(readProjectFile('package.json')) as { version: string };
    const { inputs } = component(name);
    expect(inputs['version']?.default).toBe(pkg.version);
    expect(inputs['image']?.default).toMatch(new RegExp(`/safe-scp:${pkg.version.replace(/\./g, '\\.')}$`));
    expect(inputs['install']).toMatchObject({ default: 'auto', options: ['auto', 'npm', 'none'] });
  });

  test('both components set safe-scp up with the same script', () => {
    const deploy = job(component('safe-scp'));
    const hidden = job(component('safe-scp-cli'));
    expect((deploy['script'] as string[])[0]).toBe((hidden['before_script'] as string[])[0]);
  });

  test('the variable names of the key and known_hosts are read with printenv, never evaluated', () => {
    const setup = (job(component('safe-scp'))['script'] as string[])[0] ?? '';
    expect(setup).toContain('SSH_PRIVATE_KEY="$(printenv "$SAFESCP_KEY_VARIABLE")"');
    expect(setup).toContain('SSH_KNOWN_HOSTS="$(printenv "$SAFESCP_KNOWN_HOSTS_VARIABLE")"');
    const spec = component('safe-scp').inputs;
    expect(valueProblems('key-variable', spec['key-variable'] ?? {}, 'PROD_KEY; rm -rf /')).not.toEqual([]);
  });

  test('safe-scp: the job carries its inputs in quoted variables, never in the script text', () => {
    const template = component('safe-scp');
    const built = job(template, { source: 'dist/', host: 'web1.example.com', target: '/srv/app/', 'extra-args': '--preserve' });
    expect(built['variables']).toMatchObject({
      SAFESCP_SOURCE: 'dist/',
      SAFESCP_HOST: 'web1.example.com',
      SAFESCP_TARGET: '/srv/app/',
      SAFESCP_RECURSIVE_FLAG: '--recursive=true',
      SAFESCP_EXTRA_ARGS: '--preserve',
      SAFE_SCP_PORT: 22,
      SAFE_SCP_RETRIES: 5,
    });
    const raw = Object.values(template.body as Record<string, Record<string, unknown>>)[0] ?? {};
    expect(JSON.stringify([raw['script'], raw['before_script']])).not.toContain('$[[');
    expect(JSON.stringify(built['script'])).not.toContain('web1.example.com');
    expect(built['resource_group']).toBe('safe-scp/web1.example.com/22');
    expect(job(template, { source: 'dist/', host: 'web1.example.com', target: '/srv/app/', port: 2222 })['resource_group']).toBe('safe-scp/web1.example.com/2222');
    expect(built['rules']).toEqual([{ if: '$CI_COMMIT_BRANCH == $CI_DEFAULT_BRANCH' }]);
  });

  test('safe-scp: the host input only admits resource-group-safe names', () => {
    const host = component('safe-scp').inputs['host'] ?? {};
    for (const ok of ['web1.example.com', '10.0.0.7', '$DEPLOY_HOST', '${DEPLOY_HOST}']) expect(valueProblems('host', host, ok)).toEqual([]);
    for (const bad of ['web1:22', 'deploy@web1', '[::1]', '-oProxyCommand=x', 'a b', '']) {
      expect([bad, valueProblems('host', host, bad)]).not.toEqual([bad, []]);
    }
  });

  test('safe-scp: the fleet inputs reach the CLI as its own SAFE_SCP_* twins, empty by default', () => {
    const { inputs } = component('safe-scp');
    expect(inputs['hosts']).toMatchObject({ default: '' });
    expect(inputs['parallel']).toMatchObject({ type: 'number', default: 4 });
    expect(inputs['jump-host']).toMatchObject({ default: '' });
    const base = { source: 'dist/', host: 'web1.example.com', target: '/srv/app/' };
    expect(job(component('safe-scp'), base)['variables']).toMatchObject({ SAFE_SCP_HOSTS: '', SAFE_SCP_PARALLEL: 4, SAFE_SCP_JUMP_HOST: '' });
    const fleet = job(component('safe-scp'), {
      ...base,
      host: 'web-fleet',
      hosts: 'web1.example.com,ops@web2.example.com:2222',
      parallel: 8,
      'jump-host': 'jump@bastion.example.com:2200',
    });
    expect(fleet['variables']).toMatchObject({
      SAFE_SCP_HOSTS: 'web1.example.com,ops@web2.example.com:2222',
      SAFE_SCP_PARALLEL: 8,
      SAFE_SCP_JUMP_HOST: 'jump@bastion.example.com:2200',
    });
    // GitLab serialises per resource group name: with `hosts`, `host` names the one group of the fleet.
    expect(fleet['resource_group']).toBe('safe-scp/web-fleet/22');
    expect(gitlabOnlyProblems({ deploy: fleet })).toEqual([]);
  });

  test('safe-scp: hosts and jump-host admit lists, $VARIABLES and @file, not words or options', () => {
    const { inputs } = component('safe-scp');
    const ok = ['', 'web1', 'web1.example.com,ops@web2.example.com:2222', 'a, b,c', '[2001:db8::7]:2222,10.0.0.7', '$WEB_HOSTS', '${WEB_HOSTS}', '@deploy/hosts.txt'];
    const bad = ['web1 web2', '-oProxyCommand=x', ',web1', 'web1,,web2', ' web1'];
    for (const name of ['hosts', 'jump-host']) {
      for (const value of ok) expect([name, value, valueProblems(name, inputs[name] ?? {}, value)]).toEqual([name, value, []]);
      for (const value of bad) expect([name, value, valueProblems(name, inputs[name] ?? {}, value)]).not.toEqual([name, value, []]);
    }
  });

  test('safe-scp: the copy step writes the remote operand without a host when SAFE_SCP_HOSTS is set', () => {
    const built = job(component('safe-scp'), { source: 'dist/', host: 'web1.example.com', user: 'deploy', target: '/srv/app/', 'extra-args': '-l 800' });
    const copyStep = (built['script'] as string[])[1] ?? '';
    // A stand-in safe-scp on PATH prints its arguments, one per line.
    const bin = mkdtempSync(path.join(os.tmpdir(), 'safe-scp-ci-yaml-'));
    try {
      writeFileSync(path.join(bin, 'safe-scp'), '#!/bin/sh\nprintf "arg: %s\\n" "$@"\n');
      chmodSync(path.join(bin, 'safe-scp'), 0o755);
      const run = (variables: Record<string, unknown>): string[] => {
        const env = Object.fromEntries(Object.entries({ ...(built['variables'] as object), ...variables }).map(([k, v]) => [k, String(v)]));
        const out = execFileSync('sh', ['-ec', copyStep], { env: { ...env, PATH: `${bin}:${process.env['PATH'] ?? ''}` }, encoding: 'utf8' });
        return out.split('\n').filter((line) => line.startsWith('arg: ')).map((line) => line.slice('arg: '.length));
      };
      expect(run({})).toEqual(['--recursive=true', '-l', '800', 'dist/', 'deploy@web1.example.com:/srv/app/']);
      expect(run({ SAFE_SCP_HOSTS: 'web1,web2:2222' })).toEqual(['--recursive=true', '-l', '800', 'dist/', 'deploy@:/srv/app/']);
      expect(run({ SAFE_SCP_HOSTS: '@hosts.txt', SAFESCP_USER: '' })).toEqual(['--recursive=true', '-l', '800', 'dist/', ':/srv/app/']);
      // Blank, as the CLI reads it (trimmed): no fan-out, so the operand keeps its host.
      expect(run({ SAFE_SCP_HOSTS: '  ' })).toEqual(['--recursive=true', '-l', '800', 'dist/', 'deploy@web1.example.com:/srv/app/']);
    } finally {
      rmSync(bin, { recursive: true, force: true });
    }
  });

  test('safe-scp-cli: the hidden job name must start with a dot', () => {
    const as = component('safe-scp-cli').inputs['as'] ?? {};
    expect(valueProblems('as', as, '.safe-scp-prod')).toEqual([]);
    expect(valueProblems('as', as, 'safe-scp')).not.toEqual([]);
  });
});

describe('includes of the components', () => {
  test('every include in the pipelines and in the docs passes only declared inputs, of the right type', () => {
    expect(checkIncludes(projectFilesAndDocs(), templates)).toEqual([]);
  });

  test('the pipeline self-tests both components at this commit, and the docs show both', () => {
    const names = new Set(templates.keys());
    const own = includesIn('.gitlab-ci.yml', readProjectFile('.gitlab-ci.yml'), names).map((i) => i.component);
    expect(own).toEqual([
      '$CI_SERVER_FQDN/$CI_PROJECT_PATH/safe-scp@$CI_COMMIT_SHA',
      '$CI_SERVER_FQDN/$CI_PROJECT_PATH/safe-scp-cli@$CI_COMMIT_SHA',
    ]);
    expect(new Set(includesIn(DOCS, readProjectFile(DOCS), names).map((i) => i.name))).toEqual(names);
  });

  const allIncludes = projectFilesAndDocs().flatMap(([where, text]) => includesIn(where, text, new Set(componentNames())));
  test.each(allIncludes.map((i) => [`${i.where}: ${i.name} as ${String(i.inputs['as'] ?? 'default')}`, i] as const))(
    'the job that %s creates is valid for GitLab',
    (_where, include) => {
      const template = component(include.name);
      const { values, problems } = resolveInputs(template.inputs, include.inputs);
      expect(problems).toEqual([]);
      const body = interpolate(template.body, values);
      expect(schemaErrors(body)).toEqual([]);
      expect(gitlabOnlyProblems(body)).toEqual([]);
    },
  );

  test('the docs show a fleet deployed from one job with `hosts`, valid for GitLab', () => {
    const fleet = includesIn(DOCS, readProjectFile(DOCS), new Set(['safe-scp'])).filter((i) => typeof i.inputs['hosts'] === 'string' && i.inputs['hosts'] !== '');
    expect(fleet.length).toBeGreaterThan(0);
    for (const include of fleet) {
      const built = job(component('safe-scp'), include.inputs);
      expect(built['variables']).toMatchObject({ SAFE_SCP_HOSTS: include.inputs['hosts'] });
      expect(schemaErrors({ deploy: built })).toEqual([]);
      expect(gitlabOnlyProblems({ deploy: built })).toEqual([]);
    }
  });

  test('the docs show a fleet spread over jobs with `parallel: matrix`, one valid resource group per host', () => {
    const examples = matrixExamples(readProjectFile(DOCS));
    expect(examples.length).toBeGreaterThan(0);
    for (const { include, override, variable, values } of examples) {
      // GitLab merges the job of the same name in .gitlab-ci.yml into the component's job.
      const merged = deepMerge(job(component('safe-scp'), include.inputs), override);
      const name = String(include.inputs['as']);
      expect(schemaErrors({ [name]: merged })).toEqual([]);
      expect(gitlabOnlyProblems({ [name]: merged })).toEqual([]);
      // GitLab expands the matrix variable in resource_group when it creates each job (one level deep).
      const groups = values.map((value) => expandVariable(String(merged['resource_group']), variable, value));
      expect(groups).toEqual(values.map((value) => `safe-scp/${value}/${String(include.inputs['port'] ?? 22)}`));
      for (const group of groups) expect(gitlabOnlyProblems({ deploy: { script: ['x'], resource_group: group } })).toEqual([]);
      expect(new Set(groups).size).toBe(values.length);
      // Each value is a host the single-host form also accepts, so both forms share that host's group.
      for (const value of values) expect(valueProblems('host', component('safe-scp').inputs['host'] ?? {}, value)).toEqual([]);
    }
  });

  test('the docs list every input of both components', () => {
    const docs = readProjectFile(DOCS);
    for (const template of templates.values()) {
      for (const name of Object.keys(template.inputs)) expect([template.name, name, docs.includes(`\`${name}\``)]).toEqual([template.name, name, true]);
    }
  });
});

interface MatrixExample {
  include: ComponentInclude;
  override: Record<string, unknown>;
  variable: string;
  values: string[];
}

/** YAML blocks that include safe-scp with `host: $VAR` and give the same job a `parallel: matrix` over VAR. */
function matrixExamples(markdown: string): MatrixExample[] {
  const found: MatrixExample[] = [];
  for (const [i, block] of markdownYamlBlocks(markdown).entries()) {
    for (const doc of parseDocuments(block)) {
      for (const include of componentIncludes(doc, `${DOCS} (yaml block ${i + 1})`, new Set(['safe-scp']))) {
        const variable = /^\$\{?([A-Za-z_][A-Za-z0-9_]*)\}?$/.exec(String(include.inputs['host'] ?? ''))?.[1];
        const override = isRecord(doc) ? doc[String(include.inputs['as'] ?? 'safe-scp')] : undefined;
        const matrix = isRecord(override) && isRecord(override['parallel']) ? override['parallel']['matrix'] : undefined;
        if (!variable || !isRecord(override) || !Array.isArray(matrix)) continue;
        const values = matrix.flatMap((entry) => (isRecord(entry) ? [entry[variable]].flat() : [])).filter((v) => v !== undefined).map(String);
        found.push({ include, override, variable, values });
      }
    }
  }
  return found;
}

/** GitLab's merge of a job defined again in the including file: mappings merge, anything else is replaced. */
function deepMerge(base: Record<string, unknown>, over: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = { ...base };
  for (const [key, value] of Object.entries(over)) {
    const current = out[key];
    out[key] = isRecord(current) && isRecord(value) ? deepMerge(current, value) : value;
  }
  return out;
}

function expandVariable(text: string, name: string, value: string): string {
  return text.replace(new RegExp(`\\$(${name}\\b|\\{${name}\\})`, 'g'), value);
}

describe('the include checker', () => {
  const deploy = (inputs: string): string => `include:
  - component: gitlab.example.com/acme/safe-scp/safe-scp@1.0.0
    inputs:
      source: dist/
      host: web1.example.com
      target: /srv/app/
${inputs}`;

  const check = (yaml: string): string[] => checkIncludes([['bad.yml', yaml]], templates);

  test('accepts a correct include', () => {
    expect(check(deploy('      port: 2222\n      recursive: false\n'))).toEqual([]);
  });

  test('fails on an input the component does not declare, with GitLab\'s wording', () => {
    expect(check(deploy('      hostname: web2.example.com\n      max-connections: 2\n'))).toEqual([
      'bad.yml: gitlab.example.com/acme/safe-scp/safe-scp@1.0.0: unknown input arguments: hostname, max-connections',
    ]);
  });

  test('fails on a wrong type, a value outside the options, a regex mismatch and a missing input', () => {
    const problems = check(`include:
  - component: gitlab.example.com/acme/safe-scp/safe-scp@1.0.0
    inputs:
      source: dist/
      host: web1.example.com:22
      port: '2222'
      install: yarn
`);
    expect(problems).toEqual([
      expect.stringContaining('`host` input: `web1.example.com:22` does not match required regex'),
      expect.stringContaining('`port` input: provided value is not a number ("2222")'),
      expect.stringContaining('`target` input: required value has not been provided'),
      expect.stringContaining('`install` input: `yarn` is not in the list of allowed options (auto, npm, none)'),
    ]);
  });

  test('reads YAML 1.1 booleans as GitLab does: `yes` is not a string', () => {
    expect(check(deploy('      user: yes\n'))).toEqual([expect.stringContaining('`user` input: provided value is not a string (true)')]);
  });

  test('finds includes in the yaml blocks of Markdown, and ignores other components', () => {
    const markdown = `Text.\n\n\`\`\`yaml\n${deploy('      bogus: 1\n')}  - component: gitlab.example.com/other/thing@1.0.0\n    inputs: { anything: 1 }\n\`\`\`\n`;
    expect(checkIncludes([['README.md', markdown]], templates)).toEqual([
      'README.md (yaml block 1): gitlab.example.com/acme/safe-scp/safe-scp@1.0.0: unknown input arguments: bogus',
    ]);
  });

  test('checks one include directly', () => {
    const include = { where: 'x.yml', component: 'c/safe-scp-cli@1.0.0', name: 'safe-scp-cli', inputs: { 'known-hosts': 'X' } };
    expect(checkInclude(include, component('safe-scp-cli'))).toEqual(['x.yml: c/safe-scp-cli@1.0.0: unknown input arguments: known-hosts']);
  });
});

describe('the interpolation checker', () => {
  const header = `spec:
  inputs:
    stage:
      description: Stage.
      default: deploy
    unused:
      description: Never used.
      default: ''
---
`;

  test('fails on a block that names an undeclared input, on other blocks, and on unused inputs', () => {
    const body = 'job:\n  stage: $[[ inputs.stage ]]\n  script:\n    - echo "$[[ inputs.stag ]]"\n    - echo "$[[ component.sha ]]"\n';
    const template = loadTemplate('fake', header + body);
    expect(interpolationProblems(template)).toEqual([
      'templates/fake.yml: $[[ inputs.stag ]] refers to an undeclared input `stag`',
      'templates/fake.yml: $[[ component.sha ]] is not a plain $[[ inputs.<name> ]] block',
      'templates/fake.yml: input `unused` is declared but never used',
    ]);
  });

  test('interpolates like GitLab: a whole value keeps its type, an embedded block becomes text', () => {
    const values = { n: 3, b: true, list: [{ when: 'always' }], s: 'web1' };
    expect(interpolate({ '$[[ inputs.s ]]-job': { a: '$[[ inputs.n ]]', b: 'x$[[ inputs.b ]]', r: '$[[ inputs.list ]]' } }, values)).toEqual({
      'web1-job': { a: 3, b: 'xtrue', r: [{ when: 'always' }] },
    });
    expect(() => interpolate('$[[ inputs.nope ]]', values)).toThrow(/not declared/);
  });
});

describe('GitLab rules beyond the schema', () => {
  test('a boolean variable value or a resource group with ":" is reported', () => {
    const doc = { deploy: { script: ['x'], variables: { FLAG: true, PORT: 22, NAME: 'x' }, resource_group: 'safe-scp/web1:22' } };
    expect(schemaErrors(doc)).toEqual([]);
    expect(gitlabOnlyProblems(doc)).toEqual([
      'deploy.variables: variable FLAG is true; GitLab accepts only strings and integers',
      'deploy.resource_group: "safe-scp/web1:22" is not a valid resource group name',
    ]);
  });
});
