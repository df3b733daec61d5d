import { z } from 'zod';
import { parseHostPort, parseSize } from '../util/units.ts';
import { UsageError } from '../util/errors.ts';
import { iscsiNameSchema, chapSchema, chapSecret, logLevelSchema, parseConfig } from '../util/config-schema.ts';
import type { PortalConfig } from '../initiator/copy-targets.ts';

// `ferry mover` configuration: flags, or the same fields in a JSON --config file.

const portalSpec = z.union([
  z.string().min(1),
  z.object({ address: z.string().min(1), chap: chapSchema.optional(), mutualChap: chapSchema.optional() }).strict(),
]);

export const MoverConfigSchema = z
  .object({
    listen: z.string().default('127.0.0.1:3261'),
    iqn: iscsiNameSchema.default('iqn.2026-11.dev.ferry:mover'),
    /** The name the mover logs in to other targets with. */
    initiatorName: z.string().optional(),
    portals: z.array(portalSpec).default([]),
    /** CHAP used for every portal given as a plain address. */
    portalChap: chapSchema.optional(),
    /** CHAP the mover's own target requires of initiators. */
    chap: chapSchema.optional(),
    mutualChap: chapSchema.optional(),
    allowedInitiators: z.array(z.string()).optional(),
    /** Bandwidth cap over all of the mover's copies, bytes per second ("200M" or a number). */
    maxRate: z.union([z.string(), z.number().positive()]).optional(),
    logLevel: logLevelSchema,
  })
  .strict();

export type MoverConfigInput = z.input<typeof MoverConfigSchema>;

export interface MoverConfig {
  listen: { host: string; port: number };
  iqn: string;
  initiatorName: string;
  portals: PortalConfig[];
  chap?: { user: string; secret: string };
  mutualChap?: { user: string; secret: string };
  allowedInitiators?: string[];
  /** Bytes per second over all copies; unlimited when absent. */
  maxBytesPerSecond?: number;
  logLevel: string;
}

/** "200M" or "200M/s" → bytes per second (K, M, G are powers of 1024, as in sizes). */
function parseRate(text: string): number {
  const n = parseSize(text.replace(/\/s$/i, ''), 'max rate');
  if (n <= 0) throw new UsageError(`max rate "${text}" must be above 0 bytes per second, e.g. 200M`);
  return n;
}

/** Validate raw config; errors name the field and say what to fix. */
export function resolveMoverConfig(raw: unknown, source = 'config'): MoverConfig {
  const c = parseConfig(MoverConfigSchema, raw, source);
  const portalChap = chapSecret(c.portalChap);
  const portals = c.portals.map((p): PortalConfig => {
    const spec = typeof p === 'string' ? { address: p } : p;
    const hp = parseHostPort(spec.address, 3260, 'portal');
    const chap = typeof p === 'string' ? portalChap : chapSecret(p.chap);
    return {
      host: hp.host,
      port: hp.port,
      chap,
      mutualChap: typeof p === 'string' ? undefined : chapSecret(p.mutualChap),
    };
  });
  return {
    listen: parseHostPort(c.listen, 3261, 'listen address'),
    iqn: c.iqn,
    initiatorName: c.initiatorName ?? `${c.iqn.split(':')[0]}:mover-initiator`,
    portals,
    chap: chapSecret(c.chap),
    mutualChap: chapSecret(c.mutualChap),
    allowedInitiators: c.allowedInitiators,
    ...(c.maxRate === undefined
      ? {}
      : { maxBytesPerSecond: typeof c.maxRate === 'number' ? c.maxRate : parseRate(c.maxRate) }),
    logLevel: c.logLevel,
  };
}
