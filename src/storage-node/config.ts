import { dirname, join } from 'node:path';
import { z } from 'zod';
import { parseSize, parseHostPort } from '../util/units.ts';
import { UsageError } from '../util/errors.ts';
import { iscsiNameSchema, chapSchema, chapSecret, logLevelSchema, parseConfig } from '../util/config-schema.ts';

// The storage node's configuration: what `ferry target` flags and `--config FILE` (JSON) say.

const diskSpec = z.union([
  z.string().min(1),
  z.object({ path: z.string().min(1), size: z.union([z.string(), z.number()]).optional() }),
]);

export const TargetConfigSchema = z
  .object({
    listen: z.string().default('127.0.0.1:3260'),
    iqn: iscsiNameSchema.default('iqn.2026-11.dev.ferry:store'),
    blockSize: z.union([z.literal(512), z.literal(4096)]).default(512),
    disks: z.array(diskSpec).default([]),
    chap: chapSchema.optional(),
    mutualChap: chapSchema.optional(),
    allowedInitiators: z.array(z.string()).optional(),
    lunDir: z.string().optional(),
    library: z.string().optional(),
    drives: z.union([z.number(), z.string()]).optional(),
    slots: z.union([z.number(), z.string()]).optional(),
    cartridgeSize: z.union([z.number(), z.string()]).optional(),
    tape: z.string().optional(),
    api: z.string().optional(),
    apiTokenFile: z.string().optional(),
    /** Portals whose LUs this node's copy managers may use as copy sources/destinations (EXTENDED COPY). */
    copyPortals: z.array(z.string()).default([]),
    copyPortalChap: chapSchema.optional(),
    logLevel: logLevelSchema,
  })
  .strict();

export type TargetConfigInput = z.input<typeof TargetConfigSchema>;

export interface DiskConfig {
  path: string;
  sizeBytes?: number;
}

export interface TargetConfig {
  listen: { host: string; port: number };
  iqn: string;
  blockSize: 512 | 4096;
  disks: DiskConfig[];
  chap?: { user: string; secret: string };
  mutualChap?: { user: string; secret: string };
  allowedInitiators?: string[];
  /** Tape: a library directory (changer + drives) and/or a stand-alone drive's cartridge. */
  tapes: {
    library?: string;
    drives?: number | string;
    slots?: number | string;
    cartridgeSize?: number | string;
    tape?: string;
  };
  /** Where LUNs created through the management API live (lun-N.img). */
  lunDir: string;
  /** Management API address, and the file holding its bearer token. */
  api?: { host: string; port: number };
  apiTokenFile?: string;
  /** Remote copy targets for the LUs' copy managers (src/initiator/copy-targets.ts). */
  copyPortals: Array<{ host: string; port: number; chap?: { user: string; secret: string } }>;
  logLevel: string;
}

/** "./disk0.img:64M" → {path, sizeBytes}; a path alone opens an existing file. */
export function parseDiskSpec(spec: string | { path: string; size?: string | number }): DiskConfig {
  if (typeof spec !== 'string') {
    return {
      path: spec.path,
      sizeBytes:
        spec.size === undefined
          ? undefined
          : typeof spec.size === 'number'
            ? spec.size
            : parseSize(spec.size, `size of ${spec.path}`),
    };
  }
  // FILE:SIZE: whatever follows the last colon is a size unless it looks like a path.
  const i = spec.lastIndexOf(':');
  if (i <= 0 || spec.slice(i + 1).includes('/')) return { path: spec };
  return {
    path: spec.slice(0, i),
    sizeBytes: parseSize(spec.slice(i + 1), `size of ${spec.slice(0, i)} in --disk ${spec}`),
  };
}

/** Validate raw config; errors name the field and say what to fix. */
export function resolveTargetConfig(raw: unknown, source = 'config'): TargetConfig {
  const c = parseConfig(TargetConfigSchema, raw, source);
  const disks = c.disks.map(parseDiskSpec);
  for (const d of disks) {
    if (d.sizeBytes !== undefined && d.sizeBytes % c.blockSize !== 0) {
      throw new UsageError(
        `${source}: size of ${d.path} (${d.sizeBytes} bytes) is not a multiple of the ${c.blockSize}-byte block size`,
      );
    }
  }
  if (c.api && !c.apiTokenFile)
    throw new UsageError(`${source}: the management API needs a bearer token: add --api-token-file FILE`);
  const firstImage = disks[0]?.path;
  return {
    listen: parseHostPort(c.listen, 3260, 'listen address'),
    tapes: { library: c.library, drives: c.drives, slots: c.slots, cartridgeSize: c.cartridgeSize, tape: c.tape },
    lunDir: c.lunDir ?? (firstImage ? join(dirname(firstImage), 'ferry-luns') : 'ferry-luns'),
    api: c.api ? parseHostPort(c.api, 8460, 'API address') : undefined,
    apiTokenFile: c.apiTokenFile,
    copyPortals: c.copyPortals.map((a) => ({
      ...parseHostPort(a, 3260, 'copy portal'),
      chap: chapSecret(c.copyPortalChap),
    })),
    iqn: c.iqn,
    blockSize: c.blockSize,
    disks,
    chap: chapSecret(c.chap),
    mutualChap: chapSecret(c.mutualChap),
    allowedInitiators: c.allowedInitiators,
    logLevel: c.logLevel,
  };
}
