import { readFile } from 'node:fs/promises';
import { InitiatorSession } from '../initiator/session.ts';
import { ChangerClient } from '../media/changer-client.ts';
import type { ElementStatus } from '../scsi/smc.ts';
import { discoverLibrary, type DiscoveredLibrary } from '../media/discovery.ts';
import { DriveClient } from '../media/drive-client.ts';
import { SnapshotApiClient } from '../storage-node/api-client.ts';
import type { NodeControl } from '../storage-node/node-control.ts';
import type { IscsiEndpoint, NodeConfig, PoolConfig, ServerConfig } from '../server/config.ts';
import type { Designator } from '../xcopy/copy-target.ts';
import { FerryError } from '../util/errors.ts';
import { ServiceError } from './types.ts';
import { buildTestUnitReady } from '../scsi/cdb/spc.ts';

/**
 * The site as the backup server reaches it: storage nodes (their API and iSCSI portal),
 * libraries (changer and drives found by discovery), stand-alone drives and data movers.
 * Sessions are opened on first use and kept; the server only ever sends control commands
 * and parameter lists on them.
 */

export const SERVER_INITIATOR = 'iqn.2026-11.dev.ferry:backup-server';

/** A drive a job writes or reads through, with what it takes to copy to or from it. */
export interface MountedDrive {
  /** `library/elementAddress` or the stand-alone drive's name (the reservation key). */
  name: string;
  drive: DriveClient;
  designator: Designator;
  /** MAM LOAD COUNT of the cartridge, when the drive reports it. */
  loadCount?: number;
  /** Library drives: the changer and the data transfer element. */
  changer?: ChangerClient;
  elementAddress?: number;
  /** The target the drive is on (its own LU is a copy manager). */
  endpoint: IscsiEndpoint;
}

export interface CopyManagerRef {
  name: string;
  session: InitiatorSession;
  lun: number;
  /** The next LIST IDENTIFIER on this session and LU, shared by every job that uses them. */
  listId: () => number;
  /** Call when the job is done with a configured mover: its load goes down by one. */
  release?: () => void;
}

export class Site {
  readonly config: ServerConfig;
  private readonly controls = new Map<string, NodeControl>();
  private readonly sessions = new Map<string, Promise<InitiatorSession>>();
  /**
   * Held results are kept per I_T nexus and list id (SPC-4 6.18): jobs sharing a session take turns through the ids.
   */
  private readonly listIds = new Map<string, number>();
  /** Jobs using each configured mover now (this server's own count). */
  private readonly moverLoad = new Map<string, number>();
  private listIdFor(session: InitiatorSession, lun: number): () => number {
    const key = `${session.isid.join('.')}/${session.targetName}/${lun}`;
    return () => {
      const id = ((this.listIds.get(key) ?? 0) % 255) + 1;
      this.listIds.set(key, id);
      return id;
    };
  }
  private readonly libraries = new Map<string, Promise<{ found: DiscoveredLibrary; changer: ChangerClient }>>();

  /** Told the MAM load count of every cartridge a job mounts (the catalog keeps it for `ferry cartridges`). */
  onMount?: (barcode: string, loadCount: number) => Promise<void>;

  /** `controls`: in-process node controls by node name (ferry up); others use the node's API. */
  constructor(config: ServerConfig, controls?: ReadonlyMap<string, NodeControl>) {
    this.config = config;
    for (const [k, v] of controls ?? []) this.controls.set(k, v);
  }

  /**
   * Bytes on every iSCSI session the server opened and to the nodes' APIs (the "no data through the server" figure).
   */
  bytesOnWire(): number {
    let n = 0;
    for (const s of this.opened) n += s.bytesOnWire.sent + s.bytesOnWire.received;
    for (const c of this.controls.values()) if (c instanceof SnapshotApiClient) n += c.bytesOnWire;
    return n;
  }
  private readonly opened = new Set<InitiatorSession>();

  node(name: string): NodeConfig {
    const n = this.config.nodes.find((x) => x.name === name);
    if (!n)
      throw new ServiceError(
        'ERR_NOT_FOUND',
        `no storage node named ${name}: the config's nodes are ` +
          `${this.config.nodes.map((x) => x.name).join(', ') || 'none'}`,
      );
    return n;
  }

  async nodeControl(name: string): Promise<NodeControl> {
    const have = this.controls.get(name);
    if (have) return have;
    const n = this.node(name);
    const token = (await readFile(n.tokenFile, 'utf8')).trim();
    const c = new SnapshotApiClient(n.api, token);
    this.controls.set(name, c);
    return c;
  }

  pool(name: string | undefined): PoolConfig {
    const pools = this.config.pools;
    const p = name === undefined ? pools[0] : pools.find((x) => x.name === name);
    if (!p)
      throw new ServiceError(
        'ERR_BAD_REQUEST',
        name === undefined
          ? 'no pool is configured: add one to the server config'
          : `no pool named ${name}: the config's pools are ${pools.map((x) => x.name).join(', ') || 'none'}`,
      );
    return p;
  }

  /** A logged-in session to `ep`, shared by the jobs; a dead one (target restarted) is replaced. */
  async session(ep: IscsiEndpoint, kind: string): Promise<InitiatorSession> {
    const key = `${kind}:${ep.name}`;
    let s = this.sessions.get(key);
    if (
      s &&
      (await s.then(
        (x) => x.closed,
        () => true,
      ))
    ) {
      this.sessions.delete(key);
      s = undefined;
    }
    if (!s) {
      s = InitiatorSession.login({
        host: ep.portal.host,
        port: ep.portal.port,
        initiatorName: SERVER_INITIATOR,
        targetName: ep.iqn,
        chap: ep.chap,
      });
      this.sessions.set(key, s);
      s.then(
        (x) => this.opened.add(x),
        () => this.sessions.delete(key),
      );
    }
    return s;
  }

  private async library(name: string): Promise<{ found: DiscoveredLibrary; changer: ChangerClient }> {
    let l = this.libraries.get(name);
    if (
      l &&
      (await l.then(
        (x) => x.changer.session.closed,
        () => true,
      ))
    ) {
      this.libraries.delete(name); // its session died: discover again on a new one
      l = undefined;
    }
    if (!l) {
      const ep = this.config.libraries.find((x) => x.name === name);
      if (!ep) throw new ServiceError('ERR_NOT_FOUND', `no library named ${name} in the config`);
      l = (async () => {
        const s = await this.session(ep, 'library');
        const found = await discoverLibrary(s, { name });
        return { found, changer: await ChangerClient.open(s, found.changer.lun, { name }) };
      })();
      this.libraries.set(name, l);
      l.catch(() => this.libraries.delete(name));
    }
    return l;
  }

  /** Every element of a library (READ ELEMENT STATUS with barcodes). */
  async elements(library: string): Promise<ElementStatus[]> {
    return (await this.library(library)).changer.status();
  }

  /**
   * Move cartridge `barcode` of `library` to a free import/export element (`to: 'ie'`) or, from
   * one, to the first empty storage slot (`to: 'slot'`). Returns the element address it went to.
   */
  async moveCartridge(library: string, barcode: string, to: 'ie' | 'slot'): Promise<number> {
    const { changer } = await this.library(library);
    let els = await changer.status();
    let at = els.find((e) => e.full && e.barcode === barcode);
    if (!at)
      throw new ServiceError(
        'ERR_NOT_FOUND',
        `cartridge ${barcode} is not in library ${library} (see \`ferry cartridges\`)`,
      );
    if (to === 'slot' && at.type !== 'ie')
      throw new ServiceError(
        'ERR_CONFLICT',
        `cartridge ${barcode} is in ${elementName(at)} of library ${library}, not in an import/export element: it is ` +
          `imported already`,
      );
    if (to === 'ie' && at.type === 'ie') return at.address;
    if (at.type === 'drive') {
      await changer.unload(at.address); // back to its slot first
      els = await changer.status();
      at = els.find((e) => e.full && e.barcode === barcode)!;
    }
    const free = els.find((e) => e.type === to && !e.full);
    if (!free)
      throw new ServiceError(
        'ERR_CONFLICT',
        to === 'ie'
          ? `library ${library} has no free import/export element: take out the cartridges there first`
          : `library ${library} has no empty storage slot for ${barcode}: export a cartridge first`,
      );
    await changer.moveMedium(at.address, free.address);
    return free.address;
  }

  /** Cartridges in a library (barcode → element) as READ ELEMENT STATUS reports them. */
  async inventory(library: string): Promise<Array<{ barcode: string; address: number; type: string }>> {
    return (await this.elements(library))
      .filter((e) => e.full && e.barcode)
      .map((e) => ({ barcode: e.barcode!, address: e.address, type: e.type }));
  }

  /** The drives a pool can use, in order: a library's drives, or its one stand-alone drive. */
  async drivesOf(pool: PoolConfig): Promise<string[]> {
    if (pool.drive) return [pool.drive];
    const { found } = await this.library(pool.library!);
    return found.drives.map((d) => `${pool.library}/${d.elementAddress}`);
  }

  /** Open drive `name` (from drivesOf) with `barcode` loaded and ready. */
  async mount(pool: PoolConfig, name: string, barcode: string): Promise<MountedDrive> {
    if (pool.drive) {
      const ep = this.config.drives.find((x) => x.name === pool.drive)!;
      const s = await this.session(ep, 'drive');
      const drive = await DriveClient.open(s, ep.lun, { name: ep.name });
      await drive.ready();
      return { name, drive, designator: await drive.designator(), endpoint: ep };
    }
    const { found, changer } = await this.library(pool.library!);
    const address = Number(name.slice(name.lastIndexOf('/') + 1));
    const d = found.drives.find((x) => x.elementAddress === address);
    if (!d) throw new ServiceError('ERR_NOT_FOUND', `library ${pool.library} has no drive at element ${address}`);
    await changer.load(barcode, address);
    const ep = this.config.libraries.find((x) => x.name === pool.library)!;
    const drive = await DriveClient.open(changer.session, d.lun, { name: `${pool.library} drive ${address}` });
    await drive.ready();
    const loadCount = await drive.loadCount().catch(() => undefined);
    if (loadCount !== undefined) await this.onMount?.(barcode, loadCount);
    return { name, drive, designator: d.designator, changer, elementAddress: address, endpoint: ep, loadCount };
  }

  /**
   * The copy manager a job sends its lists to. With configured movers: the one named, else the
   * least loaded below its maxJobs (config order breaks ties); one in `exclude` (failed in this
   * job) or that cannot be logged in to is passed over. 'busy' when every other one is at its
   * maxJobs. Without movers: the drive's own LU.
   */
  async copyManager(
    mover: string | undefined,
    drive: MountedDrive,
    exclude: ReadonlySet<string> = new Set(),
  ): Promise<CopyManagerRef | 'busy'> {
    const movers = this.config.movers;
    if (mover !== undefined && !movers.some((x) => x.name === mover)) {
      throw new ServiceError(
        'ERR_BAD_REQUEST',
        `no mover named ${mover}: the config's movers are ${movers.map((x) => x.name).join(', ') || 'none'}`,
      );
    }
    if (movers.length) {
      const load = (n: string): number => this.moverLoad.get(n) ?? 0;
      const usable = movers.filter((m) => !exclude.has(m.name));
      const named = usable.filter((m) => m.name === mover);
      const free = usable
        .filter((m) => m.name !== mover && load(m.name) < m.maxJobs)
        .sort((a, b) => load(a.name) - load(b.name));
      const why: string[] = movers.filter((m) => exclude.has(m.name)).map((m) => `${m.name} failed in this job`);
      for (const m of [...named, ...free]) {
        this.moverLoad.set(m.name, load(m.name) + 1);
        let released = false;
        const release = (): void => {
          if (released) return;
          released = true;
          this.moverLoad.set(m.name, load(m.name) - 1);
        };
        try {
          const session = await this.session(m, 'mover');
          return { name: m.name, session, lun: 0, listId: this.listIdFor(session, 0), release };
        } catch (e) {
          release();
          why.push(`${m.name} (${m.portal.host}:${m.portal.port}): ${(e as Error).message}`);
        }
      }
      if (usable.some((m) => load(m.name) >= m.maxJobs && m.name !== mover)) return 'busy';
      throw new FerryError(
        'ERR_NO_MOVER',
        `no data mover can take the job: ${why.join('; ')}. Start a \`ferry mover\` or check the config's movers`,
      );
    }
    if (!drive.drive.copyManager) {
      // A stand-alone drive of another target (a tgtd tape LUN) has no EXTENDED COPY: a `ferry mover` must copy.
      throw new ServiceError(
        'ERR_BAD_REQUEST',
        `drive ${drive.endpoint.name} (LUN ${drive.drive.lun}) is not a copy manager (its INQUIRY has no 3PC bit): ` +
          `add a \`ferry mover\` with portals to the storage node and the drive to the config's movers`,
      );
    }
    return {
      name: `${drive.endpoint.name} (drive LU ${drive.drive.lun})`,
      session: drive.drive.session,
      lun: drive.drive.lun,
      listId: this.listIdFor(drive.drive.session, drive.drive.lun),
    };
  }

  /** Whether LUN `lun` of `ep` answers at all (TEST UNIT READY; any status will do) within 10 s. */
  async answers(ep: IscsiEndpoint, kind: string, lun: number): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<never>(
      (_, reject) => (timer = setTimeout(() => reject(new Error('no answer within 10 s')), 10_000)),
    );
    try {
      await Promise.race([
        this.session(ep, kind).then((s) => s.command(lun, buildTestUnitReady(), { allowCheckCondition: true })),
        late,
      ]);
    } finally {
      clearTimeout(timer);
    }
  }

  async close(): Promise<void> {
    const all = await Promise.allSettled([...this.sessions.values()]);
    for (const r of all) if (r.status === 'fulfilled') r.value.close();
    this.sessions.clear();
    this.libraries.clear();
  }
}

/** "slot 1025", "drive 256", "import/export element 768". */
export function elementName(e: Pick<ElementStatus, 'type' | 'address'>): string {
  return (
    `${{ slot: 'slot', drive: 'drive', ie: 'import/export element', transport: 'transport' }[e.type]} ` + `${e.address}`
  );
}
