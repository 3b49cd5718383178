/** One instruction of a Dockerfile: its keyword (upper case) and the rest of the line. */
export interface Instruction {
  keyword: string;
  args: string;
}

/** A build stage: its base image (ARG defaults substituted) and its instructions. */
export interface Stage {
  from: string;
  name: string | undefined;
  instructions: Instruction[];
}

/**
 * The stages of a Dockerfile, as far as the tests need them: line continuations (`\` at the end
 * of a line) joined, comment lines dropped (also inside a continuation, as the Dockerfile
 * reference says), `${ARG}` in FROM replaced by the ARG's default. Heredocs and parser
 * directives other than comments are not supported (the Dockerfile here uses none).
 */
export function parseDockerfile(text: string): Stage[] {
  const lines: string[] = [];
  let pending = '';
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (line.startsWith('#')) continue;
    if (line.endsWith('\\')) {
      pending += `${line.slice(0, -1).trim()} `;
      continue;
    }
    const whole = (pending + line).trim();
    pending = '';
    if (whole !== '') lines.push(whole);
  }
  const args = new Map<string, string>();
  const stages: Stage[] = [];
  for (const line of lines) {
    const [keyword = '', ...rest] = line.split(/\s+/);
    const instruction = { keyword: keyword.toUpperCase(), args: rest.join(' ') };
    if (instruction.keyword === 'FROM') {
      const [image = '', as, name] = rest;
      const from = image.replace(/\$\{(\w+)\}/g, (_, arg: string) => args.get(arg) ?? '');
      stages.push({ from, name: as?.toUpperCase() === 'AS' ? name : undefined, instructions: [] });
    } else if (stages.length === 0 && instruction.keyword === 'ARG') {
      const [key = '', value = ''] = instruction.args.split('=');
      args.set(key, value);
    } else {
      stages.at(-1)?.instructions.push(instruction);
    }
  }
  return stages;
}

/** The args of every `keyword` instruction of a stage. */
export function argsOf(stage: Stage, keyword: string): string[] {
  return stage.instructions.filter((i) => i.keyword === keyword).map((i) => i.args);
}

/** An instruction's exec form (`["a", "b"]`) as an array. */
export function execForm(args: string): string[] {
  const parsed: unknown = JSON.parse(args);
  if (!Array.isArray(parsed) || !parsed.every((a) => typeof a === 'string')) {
    throw new Error(`not an exec form: ${args}`);
  }
  return parsed;
}

/** `ENV A=1 B=2` as entries (values without quotes or spaces, as the Dockerfile here writes them). */
export function envOf(stage: Stage): Record<string, string> {
  const entries = argsOf(stage, 'ENV').flatMap((args) =>
    args.split(/\s+/).map((pair) => pair.split('=') as [string, string]),
  );
  return Object.fromEntries(entries);
}
