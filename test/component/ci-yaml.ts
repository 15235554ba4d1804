// Reads the project's GitLab CI YAML as GitLab does (documents, !reference, YAML 1.1 booleans) and interpolates
// component inputs, so tests can validate templates, pipelines and includes against GitLab's rules.
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { boolCoreTag, CORE_SCHEMA, defineScalarTag, defineSequenceTag, loadAll, mergeTag, NOT_RESOLVED } from 'js-yaml';

export const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

/** GitLab's CI JSON schema: the copy committed in test/component/schema/, or $GITLAB_CI_SCHEMA to try another. */
export function ciSchemaPath(env: Readonly<Record<string, string | undefined>> = process.env): string {
  const override = env['GITLAB_CI_SCHEMA'];
  return override ? path.resolve(override) : path.join(repoRoot, 'test', 'component', 'schema', 'ci.json');
}

/** Throws when the schema is missing: a silently skipped validation would pass every file. */
export function loadCiSchema(file = ciSchemaPath()): Record<string, unknown> {
  if (!existsSync(file)) {
    throw new Error(
      `GitLab's CI schema is missing: ${file} does not exist. The repository carries it at ` +
        'test/component/schema/ci.json (node scripts/refresh-ci-schema.mjs fetches it again); ' +
        'GITLAB_CI_SCHEMA, when set, must name an existing copy.',
    );
  }
  return JSON.parse(readFileSync(file, 'utf8')) as Record<string, unknown>;
}

/** Project-relative paths of every GitLab CI YAML file: templates, the pipeline, the component scenarios. */
export function projectYamlFiles(): string[] {
  const list = (dir: string): string[] =>
    existsSync(path.join(repoRoot, dir))
      ? readdirSync(path.join(repoRoot, dir))
          .filter((f) => /\.ya?ml$/.test(f))
          .sort()
          .map((f) => `${dir}/${f}`)
      : [];
  return [...list('templates'), '.gitlab-ci.yml', ...list('test/component')];
}

export function readProjectFile(relative: string): string {
  return readFileSync(path.join(repoRoot, relative), 'utf8');
}

// GitLab parses with Ruby's Psych: YAML 1.1 booleans yes/no/on/off (but not y/n), merge keys, and its own
// !reference tag. js-yaml's YAML11_SCHEMA also turns y/n into booleans, so build the Psych subset instead.
const psychBool = defineScalarTag(boolCoreTag.tagName, {
  implicit: true,
  implicitFirstChars: ['t', 'T', 'f', 'F', 'y', 'Y', 'n', 'N', 'o', 'O'],
  resolve: (source) => (/^(true|yes|on)$/i.test(source) ? true : /^(false|no|off)$/i.test(source) ? false : NOT_RESOLVED),
  identify: (value) => typeof value === 'boolean',
});
const reference = defineSequenceTag<unknown[]>('!reference', {
  create: () => [],
  addItem: (items, item) => {
    items.push(item);
  },
  identify: () => false,
});
const gitlabSchema = CORE_SCHEMA.withTags(mergeTag, reference, psychBool);

export function parseDocuments(text: string): unknown[] {
  return loadAll(text, { schema: gitlabSchema });
}

export function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

export type InputType = 'string' | 'number' | 'boolean' | 'array';

export interface InputSpec {
  type?: InputType;
  default?: unknown;
  description?: string;
  options?: unknown[];
  regex?: string;
}

export interface ComponentTemplate {
  name: string;
  file: string;
  inputs: Record<string, InputSpec>;
  /** The job document, before interpolation. */
  body: unknown;
  /** The text after the `---` separator. */
  bodyText: string;
}

/** Component names: `templates/<name>.yml`. */
export function componentNames(): string[] {
  return projectYamlFiles()
    .filter((f) => f.startsWith('templates/') && f.endsWith('.yml'))
    .map((f) => path.basename(f, '.yml'));
}

export function loadTemplate(name: string, text = readProjectFile(`templates/${name}.yml`)): ComponentTemplate {
  const file = `templates/${name}.yml`;
  const docs = parseDocuments(text);
  const [header, body] = docs;
  if (docs.length !== 2 || !isRecord(header) || !isRecord(header['spec'])) {
    throw new Error(`${file}: expected two YAML documents, a \`spec:\` header and the jobs, separated by ---`);
  }
  const inputs = header['spec']['inputs'];
  if (!isRecord(inputs)) throw new Error(`${file}: spec has no inputs`);
  const separator = /^---\s*$/m.exec(text);
  return {
    name,
    file,
    inputs: inputs as Record<string, InputSpec>,
    body,
    bodyText: separator ? text.slice(separator.index) : '',
  };
}

const BLOCK = /\$\[\[\s*(.*?)\s*\]\]/g;
const WHOLE_INPUT = /^\$\[\[\s*inputs\.([A-Za-z0-9_-]+)\s*\]\]$/;

function inputValue(expression: string, values: Readonly<Record<string, unknown>>): unknown {
  const match = /^inputs\.([A-Za-z0-9_-]+)$/.exec(expression);
  if (!match?.[1]) throw new Error(`unsupported interpolation $[[ ${expression} ]] (only plain $[[ inputs.<name> ]] is used here)`);
  if (!(match[1] in values)) throw new Error(`$[[ ${expression} ]] refers to an input that is not declared`);
  return values[match[1]];
}

function interpolateString(text: string, values: Readonly<Record<string, unknown>>): unknown {
  const whole = WHOLE_INPUT.exec(text);
  // As on GitLab: a block that is the whole value keeps the input's type; embedded, it becomes text.
  if (whole) return inputValue(`inputs.${whole[1]}`, values);
  return text.replace(BLOCK, (_block, expression: string) => {
    const value = inputValue(expression, values);
    return typeof value === 'string' ? value : JSON.stringify(value);
  });
}

/** Replaces every `$[[ inputs.x ]]` in keys and values, the way GitLab does before merging the component. */
export function interpolate(value: unknown, values: Readonly<Record<string, unknown>>): unknown {
  if (typeof value === 'string') return interpolateString(value, values);
  if (Array.isArray(value)) return value.map((item) => interpolate(item, values));
  if (isRecord(value)) {
    const out: Record<string, unknown> = {};
    for (const [key, item] of Object.entries(value)) out[String(interpolateString(key, values))] = interpolate(item, values);
    return out;
  }
  return value;
}

function typeOf(value: unknown): InputType | 'other' {
  if (Array.isArray(value)) return 'array';
  if (typeof value === 'string' || typeof value === 'number' || typeof value === 'boolean') return typeof value as InputType;
  return 'other';
}

/** One value against its input declaration: type, options, regex. Empty when it fits. */
export function valueProblems(name: string, spec: InputSpec, value: unknown): string[] {
  const type = spec.type ?? 'string';
  if (typeOf(value) !== type) return [`\`${name}\` input: provided value is not a ${type} (${JSON.stringify(value)})`];
  const problems: string[] = [];
  if (spec.options && !spec.options.includes(value)) {
    problems.push(`\`${name}\` input: \`${String(value)}\` is not in the list of allowed options (${spec.options.join(', ')})`);
  }
  // GitLab checks regex with RE2 on the raw text, before $VARIABLE expansion; the patterns here stay in the
  // subset RE2 and JavaScript agree on.
  if (spec.regex !== undefined && typeof value === 'string' && !new RegExp(spec.regex).test(value)) {
    problems.push(`\`${name}\` input: \`${value}\` does not match required regex: ${spec.regex}`);
  }
  return problems;
}

export interface ResolvedInputs {
  values: Record<string, unknown>;
  problems: string[];
}

/** Fills defaults and checks what an include passes, as GitLab does when it creates the pipeline. */
export function resolveInputs(spec: Readonly<Record<string, InputSpec>>, given: Readonly<Record<string, unknown>>): ResolvedInputs {
  const problems: string[] = [];
  const unknown = Object.keys(given).filter((key) => !(key in spec));
  if (unknown.length > 0) problems.push(`unknown input arguments: ${unknown.join(', ')}`);
  const values: Record<string, unknown> = {};
  for (const [name, declaration] of Object.entries(spec)) {
    const value = name in given ? given[name] : declaration.default;
    if (value === undefined) {
      problems.push(`\`${name}\` input: required value has not been provided`);
      continue;
    }
    problems.push(...valueProblems(name, declaration, value));
    values[name] = value;
  }
  return { values, problems };
}

/** Stand-ins for required inputs, to interpolate a template on its defaults alone. */
export function sampleInputs(spec: Readonly<Record<string, InputSpec>>): Record<string, unknown> {
  const samples: Record<InputType, unknown> = { string: 'example', number: 1, boolean: false, array: [] };
  const given: Record<string, unknown> = {};
  for (const [name, declaration] of Object.entries(spec)) {
    if (declaration.default === undefined) given[name] = samples[declaration.type ?? 'string'];
  }
  return given;
}

/** Keywords that are global in a pipeline; a component must not set them (GitLab's component guidelines). */
export const GLOBAL_KEYWORDS = ['default', 'include', 'stages', 'variables', 'workflow', 'image', 'services', 'cache', 'before_script', 'after_script'];

// Resource group names as GitLab stores them (Gitlab::Regex.environment_name_regex); a name that does not fit
// makes GitLab silently run the job without a resource group.
const RESOURCE_GROUP = /^[a-zA-Z0-9_${}. -]([a-zA-Z0-9_/${}. -]*[a-zA-Z0-9_${}. -])?$/;

/**
 * What GitLab rejects although the JSON schema allows it: variable values that are not a string or an integer
 * (e.g. a boolean input interpolated as a whole value), and resource group names with forbidden characters.
 */
export function gitlabOnlyProblems(doc: unknown): string[] {
  if (!isRecord(doc)) return [];
  const problems: string[] = [];
  const checkVariables = (where: string, variables: unknown): void => {
    if (!isRecord(variables)) return;
    for (const [key, value] of Object.entries(variables)) {
      const scalar = isRecord(value) ? value['value'] : value;
      if (scalar !== undefined && typeof scalar !== 'string' && !Number.isInteger(scalar)) {
        problems.push(`${where}: variable ${key} is ${JSON.stringify(scalar)}; GitLab accepts only strings and integers`);
      }
    }
  };
  checkVariables('variables', doc['variables']);
  for (const [name, job] of Object.entries(doc)) {
    if (GLOBAL_KEYWORDS.includes(name) || name === 'spec' || !isRecord(job)) continue;
    checkVariables(`${name}.variables`, job['variables']);
    const group = job['resource_group'];
    if (typeof group === 'string' && !RESOURCE_GROUP.test(group)) {
      problems.push(`${name}.resource_group: "${group}" is not a valid resource group name`);
    }
  }
  return problems;
}
