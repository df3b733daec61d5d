import type { Logger } from 'pino';
import { Target } from '../iscsi-target/target.ts';
import { TargetServer } from '../iscsi-target/server.ts';
import { luIdentity } from '../scsi/identity.ts';
import { CopyManagerLu } from '../xcopy/copy-manager-lu.ts';
import { RateLimit } from '../util/rate-limit.ts';
import { UsageError } from '../util/errors.ts';
import { PortalCopyTargets } from '../initiator/copy-targets.ts';
import type { MoverConfig } from './config.ts';

/** A running data mover: an iSCSI target whose LU 0 is a copy manager (PDT 03h). */
export interface Mover {
  readonly server: TargetServer;
  readonly target: Target;
  readonly lu: CopyManagerLu;
  readonly remote: PortalCopyTargets;
  readonly address: { host: string; port: number };
  close(): Promise<void>;
}

/**
 * Start `ferry mover`: copy sources and destinations are the LUs behind the configured portals
 * (DESIGN.md "Data movers"); the mover never looks anywhere else.
 */
export async function startMover(cfg: MoverConfig, log?: Logger): Promise<Mover> {
  const remote = new PortalCopyTargets({ initiatorName: cfg.initiatorName, portals: cfg.portals, log });
  const lu = new CopyManagerLu(luIdentity(`${cfg.iqn}|copy-manager`, { product: 'COPY-MANAGER' }), {
    remote,
    ...(cfg.maxBytesPerSecond ? { rate: new RateLimit(cfg.maxBytesPerSecond) } : {}),
    onInternalError: (err) => log?.error({ err }, 'copy manager bug'),
    onDeviceError: ({ segment, role, error }) =>
      log?.warn({ err: error, segment, role }, 'copy aborted by a copy source or destination'),
  });
  const target = new Target({
    name: cfg.iqn,
    chap: cfg.chap,
    mutualChap: cfg.mutualChap,
    allowedInitiators: cfg.allowedInitiators,
  });
  target.addLun(0, lu);
  const server = new TargetServer({ targets: [target], log });
  const address = await server.listen(cfg.listen.host, cfg.listen.port).catch((e: NodeJS.ErrnoException) => {
    throw new UsageError(`cannot listen on ${cfg.listen.host}:${cfg.listen.port}: ${e.code ?? e.message}`);
  });
  // Learn the designators up front; a miss during a copy rescans.
  await remote.discover();
  return {
    server,
    target,
    lu,
    remote,
    address,
    async close() {
      await server.close();
      await lu.close();
      await remote.close();
    },
  };
}
