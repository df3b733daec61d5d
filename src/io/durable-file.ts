import { open, rename } from 'node:fs/promises';
import { dirname } from 'node:path';

/**
 * Replace `path` whole, crash-safely: write `path.tmp`, fdatasync it, rename it over `path`,
 * fsync the directory. After a crash the file is the old one or the new one, never a mix.
 */
export async function replaceFileDurably(path: string, data: Uint8Array | string): Promise<void> {
  const tmp = `${path}.tmp`;
  const fh = await open(tmp, 'w');
  try {
    await fh.writeFile(data);
    await fh.datasync();
  } finally {
    await fh.close();
  }
  await rename(tmp, path);
  const d = await open(dirname(path), 'r');
  try {
    await d.sync();
  } finally {
    await d.close();
  }
}
