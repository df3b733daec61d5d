import { z } from 'zod';
import { parseHostPort } from '../util/units.ts';
import { UsageError } from '../util/errors.ts';
import type { PortalConfig } from '../initiator/copy-targets.ts';

// `ferry mover` configuration: flags, or the same fields in a JSON --config file.

const userSecret = z.union([
  z.string().regex(/^[^:]+:.{12,}$/, 'CHAP is USER:SECRET with a secret of at least 12 characters'),
  z.object({ user: z.string().min(1), secret: z.string().min(12, 'CHAP secrets need at least 12 characters (RFC 7143 12.1.3)') }),
]);

const portalSpec = z.union([
  z.string().min(1),
  z.object({ address: z.string().min(1), chap: userSecret.optional(), mutualChap: userSecret.optional() }).strict(),
]);

export const MoverConfigSchema = z
  .object({
    listen: z.string().default('127.0.0.1:3261'),
    iqn: z.string().default('iqn.2026-11.dev.ferry:mover'),
    /** The name the mover logs in to other targets with. */
    initiatorName: z.string().optional(),
    portals: z.array(portalSpec).default([]),
    /** CHAP used for every portal given as a plain address. */
    portalChap: userSecret.optional(),
    /** CHAP the mover's own target requires of initiators. */
    chap: userSecret.optional(),
    mutualChap: userSecret.optional(),
    allowedInitiators: z.array(z.string()).optional(),
    logLevel: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
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

function splitSecret(v: string | { user: string; secret: string } | undefined): { user: string; secret: string } | undefined {
  if (v === undefined || typeof v !== 'string') return v;
  const i = v.indexOf(':');
  return { user: v.slice(0, i), secret: v.slice(i + 1) };
}

/** Validate raw config; errors name the field and say what to fix. */
export function resolveMoverConfig(raw: unknown, source = 'config'): MoverConfig {
  const r = MoverConfigSchema.safeParse(raw);
  if (!r.success) {
    const msg = r.error.issues.map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`).join('; ');
    throw new UsageError(`${source}: ${msg}`);
  }
  const c = r.data;
  const portalChap = splitSecret(c.portalChap);
  const portals = c.portals.map((p): PortalConfig => {
    const spec = typeof p === 'string' ? { address: p } : p;
    const hp = parseHostPort(spec.address, 3260, 'portal');
    const chap = typeof p === 'string' ? portalChap : splitSecret(p.chap);
    return { host: hp.host, port: hp.port, chap, mutualChap: typeof p === 'string' ? undefined : splitSecret(p.mutualChap) };
  });
  return {
    listen: parseHostPort(c.listen, 3261, 'listen address'),
    iqn: c.iqn,
    initiatorName: c.initiatorName ?? `${c.iqn.split(':')[0]}:mover-initiator`,
    portals,
    chap: splitSecret(c.chap),
    mutualChap: splitSecret(c.mutualChap),
    allowedInitiators: c.allowedInitiators,
    logLevel: c.logLevel,
  };
}
