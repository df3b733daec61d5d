import { z } from 'zod';
import { UsageError } from './errors.ts';
import { isIscsiName, ISCSI_NAME_HINT } from '../iscsi/names.ts';

// Pieces shared by the roles' configurations (`ferry target`, `ferry mover`): flags or a JSON file.

/** CHAP credentials: "USER:SECRET" or {user, secret}; RFC 7143 12.1.3 wants ≥ 12-byte secrets. */
export const chapSchema = z.union([
  z.string().regex(/^[^:]+:.{12,}$/, 'CHAP is USER:SECRET with a secret of at least 12 characters'),
  z.object({
    user: z.string().min(1),
    secret: z.string().min(12, 'CHAP secrets need at least 12 characters (RFC 7143 12.1.3)'),
  }),
]);

/** An iSCSI name (RFC 7143 4.2.7). */
export const iscsiNameSchema = z.string().refine(isIscsiName, { message: `not an iSCSI name (${ISCSI_NAME_HINT})` });

export const logLevelSchema = z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info');

/** The {user, secret} form of a validated chapSchema value. */
export function chapSecret(v: z.infer<typeof chapSchema> | undefined): { user: string; secret: string } | undefined {
  if (v === undefined || typeof v !== 'string') return v;
  const i = v.indexOf(':');
  return { user: v.slice(0, i), secret: v.slice(i + 1) };
}

/** Validate raw config against `schema`; the error names each bad field and what to fix. */
export function parseConfig<S extends z.ZodType>(schema: S, raw: unknown, source: string): z.output<S> {
  const r = schema.safeParse(raw);
  if (!r.success) {
    const msg = r.error.issues.map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`).join('; ');
    throw new UsageError(`${source}: ${msg}`);
  }
  return r.data;
}
