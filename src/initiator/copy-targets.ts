import type { Logger } from 'pino';
import { InitiatorSession } from './session.ts';
import { RemoteBlockDevice } from './remote-device.ts';
import type { ChapSecret } from '../iscsi/chap.ts';
import { sameDesignator, type CopyTarget, type Designator, type RemoteCopyTargets } from '../xcopy/copy-target.ts';
import { decodeDeviceIdentificationPage } from '../scsi/device-identification.ts';
import { RemoteTapeDevice } from './remote-tape-device.ts';
import { decodeLunList } from '../scsi/lun.ts';
import { buildInquiry, buildReportLuns } from '../scsi/cdb/spc.ts';

/** One portal the mover may reach copy sources and destinations through. */
export interface PortalConfig {
  host: string;
  port: number;
  /** CHAP the mover presents to the targets behind this portal. */
  chap?: ChapSecret;
  mutualChap?: ChapSecret;
}

interface RemoteLu {
  /** Session key: portal + target name. */
  key: string;
  targetName: string;
  lun: number;
  peripheralDeviceType: number;
  designators: Designator[];
  session: InitiatorSession;
}

/**
 * RemoteCopyTargets over the mover's configured portals: SendTargets on each, a login to every
 * target found (CHAP from the config), REPORT LUNS, INQUIRY and VPD 83h per LU. A designator
 * is looked up only among these LUs, never anywhere else.
 */
export class PortalCopyTargets implements RemoteCopyTargets {
  private readonly initiatorName: string;
  private readonly portals: PortalConfig[];
  private readonly log?: Logger;
  private readonly sessions = new Map<string, InitiatorSession>();
  private lus: RemoteLu[] = [];
  private discovering?: Promise<void>;
  private lastDiscovery = 0;
  /**
   * Re-scan the portals on a miss at most this often (default: on every miss, concurrent misses share one scan; a LUN
   * created a moment ago, e.g. a restore to NODE:new, must be found).
   */
  private readonly rescanMs: number;

  constructor(opts: { initiatorName: string; portals: PortalConfig[]; log?: Logger; rescanMs?: number }) {
    this.initiatorName = opts.initiatorName;
    this.portals = opts.portals;
    this.log = opts.log;
    this.rescanMs = opts.rescanMs ?? 0;
  }

  async find(designator: Designator, _signal: AbortSignal): Promise<CopyTarget | undefined> {
    let lu = this.lookup(designator);
    if (!lu && Date.now() - this.lastDiscovery >= this.rescanMs) {
      await this.discover();
      lu = this.lookup(designator);
    }
    if (!lu) return undefined;
    try {
      return await this.open(lu);
    } catch (err) {
      // The session may have died (target restarted): log in again once and retry.
      this.log?.info({ err, target: lu.key }, 'copy target unreachable; rediscovering');
      const dead = this.sessions.get(lu.key);
      this.sessions.delete(lu.key);
      await dead?.logout().catch(() => undefined);
      await this.discover();
      const again = this.lookup(designator);
      return again ? this.open(again) : undefined;
    }
  }

  private async open(lu: RemoteLu): Promise<CopyTarget> {
    const id = `${lu.targetName}#${lu.lun}`; // the same LU through any portal
    if (lu.peripheralDeviceType === 0x01) {
      return {
        kind: 'stream',
        device: await RemoteTapeDevice.open(lu.session, lu.lun),
        peripheralDeviceType: 1,
        lu: id,
      };
    }
    return {
      kind: 'block',
      device: await RemoteBlockDevice.open(lu.session, lu.lun),
      peripheralDeviceType: lu.peripheralDeviceType,
      lu: id,
    };
  }

  /** Everything found so far (for logs and `ferry mover` startup). */
  get known(): ReadonlyArray<Omit<RemoteLu, 'session' | 'key'>> {
    return this.lus.map(({ session: _s, key: _k, ...rest }) => rest);
  }

  private lookup(d: Designator): RemoteLu | undefined {
    return this.lus.find((lu) => lu.designators.some((x) => sameDesignator(x, d)));
  }

  /** Scan every portal (one scan at a time). */
  discover(): Promise<void> {
    this.discovering ??= this.scan().finally(() => {
      this.discovering = undefined;
      this.lastDiscovery = Date.now();
    });
    return this.discovering;
  }

  private async scan(): Promise<void> {
    const found: RemoteLu[] = [];
    for (const p of this.portals) {
      let names: string[];
      try {
        const disc = await InitiatorSession.login({
          host: p.host,
          port: p.port,
          initiatorName: this.initiatorName,
          chap: p.chap,
          mutualChap: p.mutualChap,
        });
        names = (await disc.sendTargets('All')).map((t) => t.name);
        await disc.logout().catch(() => undefined);
      } catch (err) {
        this.log?.warn({ err, portal: `${p.host}:${p.port}` }, 'discovery failed');
        continue;
      }
      for (const targetName of names) {
        const key = `${p.host}:${p.port}/${targetName}`;
        try {
          let s = this.sessions.get(key);
          if (s?.closed) s = undefined; // the target restarted since: log in afresh
          if (!s) {
            s = await InitiatorSession.login({
              host: p.host,
              port: p.port,
              initiatorName: this.initiatorName,
              targetName,
              chap: p.chap,
              mutualChap: p.mutualChap,
            });
            this.sessions.set(key, s);
          }
          const luns = decodeLunList((await s.command(0, buildReportLuns(), { inLength: 4096 })).data);
          for (const lun of luns) {
            try {
              const std = (await s.command(lun, buildInquiry(96), { inLength: 96 })).data;
              if (std.length < 1 || std[0] >> 5 !== 0) continue; // PERIPHERAL QUALIFIER: connected LUs only
              const vpd = (await s.command(lun, buildInquiry(255, 0x83), { inLength: 255 })).data;
              found.push({
                key,
                targetName,
                lun,
                peripheralDeviceType: std[0] & 0x1f,
                designators: decodeDeviceIdentificationPage(vpd),
                session: s,
              });
            } catch (err) {
              this.log?.debug({ err, targetName, lun }, 'LU skipped');
            }
          }
        } catch (err) {
          this.log?.warn({ err, target: key }, 'login or LU scan failed');
          const dead = this.sessions.get(key);
          this.sessions.delete(key); // log in afresh next time
          await dead?.logout().catch(() => undefined);
        }
      }
    }
    this.lus = found;
    this.log?.info(
      { lus: found.map((l) => ({ target: l.targetName, lun: l.lun, pdt: l.peripheralDeviceType })) },
      'copy targets discovered',
    );
  }

  async close(): Promise<void> {
    const all = [...this.sessions.values()];
    this.sessions.clear();
    this.lus = [];
    await Promise.all(all.map((s) => s.logout().catch(() => undefined)));
  }
}
