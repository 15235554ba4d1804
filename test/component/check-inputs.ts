// Checks every include of this project's components (pipelines and docs) against the components' `spec:inputs`,
// as GitLab does at pipeline creation; gitlab-ci-local accepts unknown inputs silently, so this is the guard.
import { isRecord, loadTemplate, parseDocuments, resolveInputs, type ComponentTemplate } from './ci-yaml.js';

export interface ComponentInclude {
  /** Where the include was found, e.g. `.gitlab-ci.yml` or `docs/components.md (block 2)`. */
  where: string;
  /** The `component:` reference as written. */
  component: string;
  /** Component name: the path segment before `@`. */
  name: string;
  inputs: Record<string, unknown>;
}

function includeItems(include: unknown): unknown[] {
  if (include === undefined || include === null) return [];
  return Array.isArray(include) ? include : [include];
}

/** `include: component:` entries of one pipeline document that name one of `names` (any host, project or version). */
export function componentIncludes(doc: unknown, where: string, names: ReadonlySet<string>): ComponentInclude[] {
  if (!isRecord(doc)) return [];
  const found: ComponentInclude[] = [];
  for (const item of includeItems(doc['include'])) {
    if (!isRecord(item) || typeof item['component'] !== 'string') continue;
    const component = item['component'];
    const name = /([^/@]+)@[^/@]+$/.exec(component)?.[1];
    if (!name || !names.has(name)) continue;
    const inputs = item['inputs'] ?? {};
    found.push({ where, component, name, inputs: isRecord(inputs) ? inputs : { '(inputs is not a mapping)': inputs } });
  }
  return found;
}

/** Problems GitLab would report for this include: unknown inputs, missing required ones, wrong type, options, regex. */
export function checkInclude(include: ComponentInclude, template: ComponentTemplate): string[] {
  return resolveInputs(template.inputs, include.inputs).problems.map((p) => `${include.where}: ${include.component}: ${p}`);
}

/** The ```yaml fenced blocks of a Markdown file, in order. */
export function markdownYamlBlocks(markdown: string): string[] {
  return [...markdown.matchAll(/^```ya?ml[^\S\n]*\n([\s\S]*?)^```[^\S\n]*$/gm)].map((m) => m[1] ?? '');
}

/** Includes found in YAML text (every document) or in the YAML blocks of Markdown. */
export function includesIn(where: string, text: string, names: ReadonlySet<string>): ComponentInclude[] {
  if (where.endsWith('.md')) {
    return markdownYamlBlocks(text).flatMap((block, i) => includesIn(`${where} (yaml block ${i + 1})`, block, names));
  }
  return parseDocuments(text).flatMap((doc) => componentIncludes(doc, where, names));
}

/** Every include in `files` (project-relative path and text), each checked against its template. */
export function checkIncludes(files: ReadonlyArray<readonly [string, string]>, templates: ReadonlyMap<string, ComponentTemplate>): string[] {
  const names = new Set(templates.keys());
  return files.flatMap(([where, text]) =>
    includesIn(where, text, names).flatMap((include) => {
      const template = templates.get(include.name);
      return template ? checkInclude(include, template) : [];
    }),
  );
}

/**
 * Interpolation blocks of a template body that GitLab could not resolve (`$[[ inputs.x ]]` with x undeclared,
 * or anything but a plain input), and declared inputs the body never uses.
 */
export function interpolationProblems(template: ComponentTemplate): string[] {
  const problems: string[] = [];
  const used = new Set<string>();
  for (const [block, expression] of template.bodyText.matchAll(/\$\[\[\s*(.*?)\s*\]\]/g)) {
    const name = /^inputs\.([A-Za-z0-9_-]+)$/.exec(expression ?? '')?.[1];
    if (!name) problems.push(`${template.file}: ${block} is not a plain $[[ inputs.<name> ]] block`);
    else if (!(name in template.inputs)) problems.push(`${template.file}: ${block} refers to an undeclared input \`${name}\``);
    else used.add(name);
  }
  for (const name of Object.keys(template.inputs)) {
    if (!used.has(name)) problems.push(`${template.file}: input \`${name}\` is declared but never used`);
  }
  return problems;
}

export function loadTemplates(names: readonly string[]): Map<string, ComponentTemplate> {
  return new Map(names.map((name) => [name, loadTemplate(name)]));
}
