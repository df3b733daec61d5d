import { stat, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import type { Command } from 'commander';
import { Cartridge } from '../tape/cartridge.ts';
import { ObjectKind } from '../tape/cartridge-format.ts';
import { LibraryInventory, type Element } from '../tape/library.ts';
import { UsageError } from '../util/errors.ts';
import { formatBytes } from '../util/units.ts';
import { table } from './client.ts';

/** One row of `ferry vtl ls`. */
export interface CartridgeListing {
  barcode: string;
  /** "slot 3", "drive 0", "mail slot 0", or "" for a loose file. */
  location: string;
  elementAddress: number | null;
  /** The file exists (cartridges are created the first time they are loaded). */
  created: boolean;
  usedBytes: number;
  capacityBytes: number;
  files: number;
  objects: number;
  writeProtected: boolean;
  loadCount: number;
  /** The first record's printable prefix (the volume label a backup application wrote), if any. */
  label: string;
}

const WHERE: Record<Element['kind'], string> = {
  storage: 'slot',
  drive: 'drive',
  'import-export': 'mail slot',
  transport: 'picker',
};

async function describe(
  path: string,
  barcode: string,
  location: string,
  address: number | null,
  capacityIfBlank: number,
): Promise<CartridgeListing> {
  const row: CartridgeListing = {
    barcode,
    location,
    elementAddress: address,
    created: false,
    usedBytes: 0,
    capacityBytes: capacityIfBlank,
    files: 0,
    objects: 0,
    writeProtected: false,
    loadCount: 0,
    label: '',
  };
  try {
    await stat(path);
  } catch {
    return row;
  }
  const c = await Cartridge.open(path, { readOnly: true });
  try {
    Object.assign(row, {
      barcode: c.label.barcode || barcode,
      created: true,
      usedBytes: c.usedBytes,
      capacityBytes: c.label.capacityBytes,
      files: c.filemarkCount,
      objects: c.objectCount,
      writeProtected: c.label.writeProtected,
      loadCount: c.label.loadCount,
    });
    if (c.runCount > 0 && c.run(0).kind === ObjectKind.DATA) {
      const n = Math.min(64, c.run(0).blockLength);
      const buf = new Uint8Array(n);
      await c.readBlocks(0, 0, 1, buf, 0, n);
      const m = /^[\x20-\x7e]+/.exec(new TextDecoder('latin1').decode(buf));
      row.label = m ? m[0].trim() : '';
    }
  } finally {
    await c.close();
  }
  return row;
}

/** List a library directory's cartridges (or loose *.cart files in any directory). */
export async function listVtl(dir: string): Promise<CartridgeListing[]> {
  let inv: LibraryInventory | undefined;
  try {
    await stat(LibraryInventory.file(dir));
    inv = await LibraryInventory.open(dir);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
  }
  const rows: CartridgeListing[] = [];
  const seen = new Set<string>();
  if (inv) {
    for (const e of inv.elements()) {
      if (!e.barcode) continue;
      seen.add(`${e.barcode}.cart`);
      rows.push(
        await describe(
          inv.cartridgePath(e.barcode),
          e.barcode,
          `${WHERE[e.kind]} ${e.index}`,
          e.address,
          inv.cartridgeSizeBytes,
        ),
      );
    }
  }
  let names: string[];
  try {
    names = await readdir(dir);
  } catch (e) {
    throw new UsageError(`cannot read ${dir}: ${(e as Error).message}`);
  }
  for (const name of names.sort()) {
    if (!name.endsWith('.cart') || seen.has(name)) continue;
    rows.push(await describe(join(dir, name), name.slice(0, -5), '', null, 0));
  }
  return rows;
}

export function registerVtl(program: Command): void {
  const vtl = program.command('vtl').summary('inspect a virtual tape library directory');
  vtl
    .command('ls')
    .summary('list cartridges: barcode, where they are, use, label')
    .argument('<dir>', 'library directory (made by ferry target --library DIR) or a directory of .cart files')
    .option('--json', 'print JSON (one array of cartridges)')
    .addHelpText(
      'after',
      "\nExamples:\n  ferry vtl ls ./vtl\n  ferry vtl ls ./vtl --json | jq '.[] | select(.files > 0)'",
    )
    .action(async (dir: string, opts: { json?: boolean }) => {
      const rows = await listVtl(dir);
      if (opts.json) {
        process.stdout.write(JSON.stringify(rows, null, 2) + '\n');
        return;
      }
      const head = ['BARCODE', 'LOCATION', 'USED', 'CAPACITY', 'FILES', 'BLOCKS', 'WP', 'LOADS', 'LABEL'];
      const cells = rows.map((r) => [
        r.barcode,
        r.location || '-',
        r.created ? formatBytes(r.usedBytes) : 'blank',
        formatBytes(r.capacityBytes),
        String(r.files),
        String(r.objects - r.files),
        r.writeProtected ? 'yes' : 'no',
        String(r.loadCount),
        r.label,
      ]);
      process.stdout.write(table(head, cells) + '\n');
    });
}
