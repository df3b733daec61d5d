import { z } from 'zod';
import { parseHostPort } from '../util/units.ts';
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
  logLevel: string;
}

/** Validate raw config; errors name the field and say what to fix. */
export function resolveMoverConfig(raw: unknown, source = 'config'): MoverConfig {
  const c = parseConfig(MoverConfigSchema, raw, source);
  const portalChap = chapSecret(c.portalChap);
  const portals = c.portals.map((p): PortalConfig => {
    const spec = typeof p === 'string' ? { address: p } : p;
    const hp = parseHostPort(spec.address, 3260, 'portal');
    const chap = typeof p === 'string' ? portalChap : chapSecret(p.chap);
    return { host: hp.host, port: hp.port, chap, mutualChap: typeof p === 'string' ? undefined : chapSecret(p.mutualChap) };
  });
  return {
    listen: parseHostPort(c.listen, 3261, 'listen address'),
    iqn: c.iqn,
    initiatorName: c.initiatorName ?? `${c.iqn.split(':')[0]}:mover-initiator`,
    portals,
    chap: chapSecret(c.chap),
    mutualChap: chapSecret(c.mutualChap),
    allowedInitiators: c.allowedInitiators,
    logLevel: c.logLevel,
  };
}
