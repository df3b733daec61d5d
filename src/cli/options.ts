import { readFile } from 'node:fs/promises';
import { UsageError } from '../util/errors.ts';

/** Commander reducer for repeatable options (`--disk a --disk b`). */
export function collect(value: string, previous: string[]): string[] {
  return [...previous, value];
}

/** Read a JSON config file; errors say which file and what is wrong with it. */
export async function readJsonConfig<T>(path: string): Promise<T> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (e) {
    throw new UsageError(`cannot read config ${path}: ${(e as Error).message}`);
  }
  try {
    return JSON.parse(text) as T;
  } catch (e) {
    throw new UsageError(`config ${path} is not valid JSON: ${(e as Error).message}`);
  }
}
