import { mkdir, readFile, access } from 'node:fs/promises';
import { replaceFileDurably } from '../io/durable-file.ts';
import { join } from 'node:path';
import { Cartridge } from './cartridge.ts';
import { FerryError, UsageError } from '../util/errors.ts';

/**
 * A tape library directory: `library.json` (the inventory: which cartridge is in which element)
 * and one `<barcode>.cart` per cartridge, created the first time it is loaded. The inventory is
 * rewritten atomically (temp file, fsync, rename) on every move, so it survives a restart.
 */

/** SMC-3 element address ranges (reported in the element address assignment page, 1Dh). */
export const ElementBase = {
  MEDIUM_TRANSPORT: 0x0000,
  IMPORT_EXPORT: 0x0010,
  DATA_TRANSFER: 0x0100,
  STORAGE: 0x1000,
} as const;

export type ElementKind = 'transport' | 'storage' | 'import-export' | 'drive';

export interface Element {
  readonly address: number;
  readonly kind: ElementKind;
  /** 0-based index within its kind (drive 0 is LUN 1). */
  readonly index: number;
  barcode: string | null;
  /** Element the cartridge last came from (SMC-3 SOURCE STORAGE ELEMENT ADDRESS). */
  source: number | null;
}

export interface LibraryOptions {
  drives?: number;
  slots?: number;
  importExport?: number;
  cartridgeSizeBytes?: number;
  /** Barcode of slot i: prefix + 3-digit number + suffix (FER001L8). */
  barcodePrefix?: string;
  barcodeSuffix?: string;
}

interface LibraryFile {
  version: 1;
  drives: number;
  slots: number;
  importExport: number;
  cartridgeSizeBytes: number;
  /** address (decimal string) → {barcode, source} for every full element. */
  contents: Record<string, { barcode: string; source: number | null }>;
}

export class LibraryError extends FerryError {
  constructor(message: string) {
    super('ERR_LIBRARY', message);
  }
}

export function defaultBarcode(i: number, prefix = 'FER', suffix = 'L8'): string {
  return `${prefix}${String(i + 1).padStart(3, '0')}${suffix}`;
}

export class LibraryInventory {
  readonly dir: string;
  readonly drives: number;
  readonly slots: number;
  readonly importExport: number;
  readonly cartridgeSizeBytes: number;
  private readonly byAddress = new Map<number, Element>();

  private constructor(dir: string, f: LibraryFile) {
    this.dir = dir;
    this.drives = f.drives;
    this.slots = f.slots;
    this.importExport = f.importExport;
    this.cartridgeSizeBytes = f.cartridgeSizeBytes;
    const add = (kind: ElementKind, base: number, n: number): void => {
      for (let i = 0; i < n; i++)
        this.byAddress.set(base + i, { address: base + i, kind, index: i, barcode: null, source: null });
    };
    add('transport', ElementBase.MEDIUM_TRANSPORT, 1);
    add('import-export', ElementBase.IMPORT_EXPORT, f.importExport);
    add('drive', ElementBase.DATA_TRANSFER, f.drives);
    add('storage', ElementBase.STORAGE, f.slots);
    for (const [addr, c] of Object.entries(f.contents)) {
      const e = this.byAddress.get(Number(addr));
      if (!e) throw new LibraryError(`${join(dir, 'library.json')}: element ${addr} does not exist`);
      e.barcode = c.barcode;
      e.source = c.source;
    }
  }

  static file(dir: string): string {
    return join(dir, 'library.json');
  }

  /** Open a library directory, creating it (blank cartridge in every slot) when new. */
  static async open(dir: string, opts: LibraryOptions = {}): Promise<LibraryInventory> {
    await mkdir(dir, { recursive: true });
    let f: LibraryFile;
    try {
      f = JSON.parse(await readFile(LibraryInventory.file(dir), 'utf8')) as LibraryFile;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT')
        throw new LibraryError(`cannot read ${LibraryInventory.file(dir)}: ${(e as Error).message}`);
      const slots = opts.slots ?? 20;
      f = {
        version: 1,
        drives: opts.drives ?? 2,
        slots,
        importExport: opts.importExport ?? 1,
        cartridgeSizeBytes: opts.cartridgeSizeBytes ?? 2 ** 31,
        contents: {},
      };
      for (let i = 0; i < slots; i++)
        f.contents[String(ElementBase.STORAGE + i)] = {
          barcode: defaultBarcode(i, opts.barcodePrefix, opts.barcodeSuffix),
          source: null,
        };
      const inv = new LibraryInventory(dir, f);
      await inv.save();
      return inv;
    }
    if (f.version !== 1) throw new LibraryError(`${LibraryInventory.file(dir)}: unsupported version ${f.version}`);
    for (const k of ['drives', 'slots'] as const) {
      if (opts[k] !== undefined && opts[k] !== f[k])
        throw new UsageError(`library ${dir} has ${f[k]} ${k}, not ${opts[k]}: omit --${k} or use a new directory`);
    }
    return new LibraryInventory(dir, f);
  }

  elements(): Element[] {
    return [...this.byAddress.values()].sort((a, b) => a.address - b.address);
  }

  element(address: number): Element | undefined {
    return this.byAddress.get(address);
  }

  driveElement(index: number): Element {
    return this.byAddress.get(ElementBase.DATA_TRANSFER + index)!;
  }

  cartridgePath(barcode: string): string {
    return join(this.dir, `${barcode}.cart`);
  }

  /** Open a cartridge's file, creating a blank one the first time. */
  async openCartridge(barcode: string): Promise<Cartridge> {
    const path = this.cartridgePath(barcode);
    try {
      await access(path);
    } catch {
      return Cartridge.create(path, { barcode, capacityBytes: this.cartridgeSizeBytes });
    }
    return Cartridge.open(path);
  }

  /** Record a move (the caller did the physical part). Persists before returning. */
  async move(from: number, to: number): Promise<void> {
    const src = this.byAddress.get(from);
    const dst = this.byAddress.get(to);
    if (!src || !dst) throw new LibraryError(`no element ${!src ? from : to}`);
    if (!src.barcode) throw new LibraryError(`element ${from} is empty`);
    if (from === to) return;
    if (dst.barcode) throw new LibraryError(`element ${to} is full`);
    dst.barcode = src.barcode;
    dst.source = from;
    src.barcode = null;
    await this.save();
  }

  private async save(): Promise<void> {
    const f: LibraryFile = {
      version: 1,
      drives: this.drives,
      slots: this.slots,
      importExport: this.importExport,
      cartridgeSizeBytes: this.cartridgeSizeBytes,
      contents: {},
    };
    for (const e of this.elements())
      if (e.barcode) f.contents[String(e.address)] = { barcode: e.barcode, source: e.source };
    await replaceFileDurably(LibraryInventory.file(this.dir), JSON.stringify(f, null, 2) + '\n');
  }
}
