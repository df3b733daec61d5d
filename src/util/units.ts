import { UsageError } from './errors.ts';

const SIZE_UNITS: Record<string, number> = { '': 1, k: 1024, m: 1024 ** 2, g: 1024 ** 3, t: 1024 ** 4 };

/** Parse "64M", "2G", "4096", "1.5G" (binary units) into bytes. */
export function parseSize(text: string, what = 'size'): number {
  const m = /^(\d+(?:\.\d+)?)\s*([kmgt]?)(?:i?b)?$/i.exec(text.trim());
  if (!m)
    throw new UsageError(
      `${what} "${text}" is not a size: use a number with an optional K, M, G or T suffix, e.g. 64M`,
    );
  const bytes = Math.round(Number(m[1]) * SIZE_UNITS[m[2].toLowerCase()]);
  if (!Number.isSafeInteger(bytes)) throw new UsageError(`${what} "${text}" is too large`);
  return bytes;
}

/** Parse "3s", "300ms", "2m", "80" (seconds) into milliseconds. */
export function parseDuration(text: string, what = 'duration'): number {
  const m = /^(\d+(?:\.\d+)?)\s*(ms|s|m|h)?$/i.exec(text.trim());
  if (!m) throw new UsageError(`${what} "${text}" is not a duration: use e.g. 3s, 300ms or 2m`);
  const mult = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 }[(m[2] ?? 's').toLowerCase() as 'ms'];
  return Math.round(Number(m[1]) * mult);
}

/** Parse "host:port" or "[v6]:port"; the port defaults to `defaultPort`. */
export function parseHostPort(text: string, defaultPort: number, what = 'address'): { host: string; port: number } {
  const m = /^(?:\[([^\]]+)\]|([^:]+))(?::(\d+))?$/.exec(text.trim());
  if (!m) throw new UsageError(`${what} "${text}" is not HOST:PORT`);
  const port = m[3] === undefined ? defaultPort : Number(m[3]);
  if (!(port >= 0 && port <= 65535)) throw new UsageError(`${what} "${text}": port must be 0-65535`);
  return { host: m[1] ?? m[2], port };
}

export function formatBytes(n: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let i = 0;
  let v = n;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return `${i === 0 ? v : v.toFixed(1)} ${units[i]}`;
}
