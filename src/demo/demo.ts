import { createHash, randomFillSync, randomUUID } from 'node:crypto';
import { mkdir, rm, rmdir } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import type { Logger } from 'pino';
import { resolveTargetConfig } from '../target/config.ts';
import { startStorageNode, type StorageNode } from '../target/storage-node.ts';
import { InitiatorSession } from '../initiator/session.ts';
import { RemoteBlockDevice } from '../initiator/remote-device.ts';
import { inquiry, testUnitReady } from '../initiator/cdb.ts';
import { CopyClient } from '../initiator/copy-client.ts';
import { buildMoveMedium, buildRead6, buildRewind } from '../scsi/tape-cdb.ts';
import { ElementBase } from '../tape/library.ts';
import { decodeDeviceIdentificationPage } from '../xcopy/resolver.ts';
import { encodeXcopyParameterList, DescriptorType, PDT, type CscdInput, type SegmentInput } from '../xcopy/descriptors.ts';
import type { Designator } from '../xcopy/copy-target.ts';
import { FerryError, UsageError } from '../util/errors.ts';

/**
 * `ferry demo`: the all-in-one node (storage node + tape library; every LU a copy manager) in
 * this process, and the backup server's part of a backup and a restore over iSCSI:
 *
 *   workstation ──WRITE──▶ disk LUN ──snapshot (quiet period)──▶ snapshot LUN
 *   backup server ──MOVE MEDIUM──▶ changer;  ──EXTENDED COPY──▶ tape drive (the data mover)
 *       05h header → tape, 00h snapshot blocks → tape, 10h filemark      (DESIGN.md "A backup")
 *   backup server ──EXTENDED COPY──▶ tape drive: 01h tape → fresh disk LUN  (restore)
 *   verify: SHA-256 of what the workstation wrote = snapshot = restored LUN (node and over iSCSI)
 *
 * The backup server's control session carries only CDBs, parameter lists and status: the
 * summary compares its socket bytes with the bytes the mover moved.
 */

export const DEMO_IQN = 'iqn.2026-11.dev.ferry:demo';
const WORKSTATION_IQN = 'iqn.2026-11.dev.ferry:demo-workstation';
const SERVER_IQN = 'iqn.2026-11.dev.ferry:demo-backup-server';
const VERIFY_IQN = 'iqn.2026-11.dev.ferry:demo-verify';

const BLOCK_SIZE = 512;
/** Tape record (variable-block mode): STREAM DEVICE TRANSFER LENGTH of every data segment. */
export const TAPE_RECORD_BYTES = 256 * 1024;
/** Blocks per 00h/01h segment: the BLOCK DEVICE NUMBER OF BLOCKS field is 16 bits (SPC-4 6.4.6.2). */
const SEGMENT_BLOCKS = 32768;
/** DEFAULT_LIMITS.maxSegmentCount is 256: header and filemark leave 254 data segments. */
const MAX_DATA_SEGMENTS = 254;
export const MAX_DEMO_BYTES = MAX_DATA_SEGMENTS * SEGMENT_BLOCKS * BLOCK_SIZE;
const WRITE_CHUNK_BYTES = 4 << 20;
const POLL_MS = 50;

export type DemoPhase = 'write' | 'snapshot' | 'load' | 'backup' | 'restore' | 'verify';

export type DemoEvent =
  | { kind: 'phase'; phase: DemoPhase; message: string }
  | { kind: 'progress'; phase: DemoPhase; doneBytes: number; totalBytes: number };

export interface DemoOptions {
  dir: string;
  sizeBytes: number;
  quietPeriodMs: number;
  timeoutMs: number;
  /** Keep the node's files (LUN images, library) after the run. */
  keep: boolean;
  log: Logger;
  onEvent?: (e: DemoEvent) => void;
  signal?: AbortSignal;
}

export interface CopyPhaseResult {
  /** Bytes the copy manager wrote (COPY STATUS TRANSFER COUNT). */
  moverBytes: number;
  segments: number;
  seconds: number;
  mbPerSecond: number;
  /** Bytes on the backup server's control session during this phase, both directions. */
  controlBytes: number;
  polls: number;
}

export interface DemoResult {
  sizeBytes: number;
  blockSize: number;
  luns: { workstation: number; snapshot: number; restored: number; changer: number; drive: number };
  cartridge: string;
  snapshot: { id: string; quietPeriodMs: number; waitedMs: number | null; seconds: number };
  write: { seconds: number; mbPerSecond: number; workstationBytesOnWire: number };
  backup: CopyPhaseResult;
  restore: CopyPhaseResult;
  /** Backup + restore bytes written by the mover. */
  moverBytes: number;
  /** Every byte on the backup server's control session (login to logout). */
  serverBytesOnWire: number;
  /** serverBytesOnWire / moverBytes. */
  ratio: number;
  serverless: boolean;
  header: Record<string, unknown> | null;
  sha256: { written: string; snapshot: string; restored: string; restoredOverIscsi: string };
  verifyBytesOnWire: number;
  verifySeconds: number;
  verified: boolean;
  seconds: number;
}

/** Reject what the demo cannot do before starting anything (exit 2 from the CLI). */
export function checkDemoSize(sizeBytes: number): void {
  if (!Number.isSafeInteger(sizeBytes) || sizeBytes < TAPE_RECORD_BYTES || sizeBytes % TAPE_RECORD_BYTES !== 0) {
    throw new UsageError(`--size must be a positive multiple of ${TAPE_RECORD_BYTES / 1024}K (the tape record), e.g. 64M; got ${sizeBytes} bytes`);
  }
  if (sizeBytes > MAX_DEMO_BYTES) {
    throw new UsageError(`--size is at most ${MAX_DEMO_BYTES / (1 << 20)}M (one EXTENDED COPY of ${MAX_DATA_SEGMENTS} 16 MiB segments)`);
  }
}

const wire = (s: InitiatorSession): number => s.bytesOnWire.sent + s.bytesOnWire.received;
const mbps = (bytes: number, seconds: number): number => (seconds > 0 ? Math.round((bytes / (1 << 20) / seconds) * 10) / 10 : 0);

function checkAbort(signal?: AbortSignal): void {
  if (signal?.aborted) throw new FerryError('ERR_INTERRUPTED', 'interrupted');
}

async function naaOf(s: InitiatorSession, lun: number): Promise<Designator> {
  const page = (await s.command(lun, inquiry(255, 0x83), { inLength: 255 })).data;
  const d = decodeDeviceIdentificationPage(page).find((x) => x.designatorType === 3 && x.association === 0);
  if (!d) throw new FerryError('ERR_DEMO', `LUN ${lun} has no NAA designator in VPD 83h`);
  return d;
}

const diskCscd = (d: Designator): CscdInput => ({ ...d, peripheralDeviceType: PDT.DISK, pad: false, fixed: false, blockLength: BLOCK_SIZE });
const tapeCscd = (d: Designator): CscdInput => ({ ...d, peripheralDeviceType: PDT.TAPE, pad: false, fixed: false, blockLength: 0 });

/** Data segments covering [0, blockCount): 16 MiB each, the last one shorter. */
function dataSegments(type: 0x00 | 0x01, blockCount: number, source: number, destination: number): SegmentInput[] {
  const out: SegmentInput[] = [];
  for (let lba = 0; lba < blockCount; lba += SEGMENT_BLOCKS) {
    out.push({ type, cat: false, source, destination, streamTransferLength: TAPE_RECORD_BYTES, blockCount: Math.min(SEGMENT_BLOCKS, blockCount - lba), lba });
  }
  return out;
}

/** Send one EXTENDED COPY to the copy manager at `lun` and wait for it, with progress. */
async function runCopy(
  s: InitiatorSession,
  lun: number,
  listId: number,
  list: Uint8Array,
  totalBytes: number,
  phase: DemoPhase,
  opts: DemoOptions,
): Promise<CopyPhaseResult> {
  const before = wire(s);
  const out = await new CopyClient(s, lun).run(list, {
    listId,
    pollMs: POLL_MS,
    signal: opts.signal,
    what: phase,
    onProgress: (p) => opts.onEvent?.({ kind: 'progress', phase, doneBytes: p.transferBytes, totalBytes }),
  });
  const seconds = out.seconds;
  return { moverBytes: out.transferBytes, segments: out.segmentsProcessed, seconds: Math.round(seconds * 1000) / 1000, mbPerSecond: mbps(out.transferBytes, seconds), controlBytes: wire(s) - before, polls: out.polls };
}

/** The self-describing set header the mover writes first (segment 05h), JSON padded to 512 bytes. */
function setHeader(fields: Record<string, unknown>): Uint8Array {
  const text = JSON.stringify({ magic: 'FERRY-SET', version: 1, ...fields });
  const bytes = Buffer.alloc(Math.max(512, Math.ceil((text.length + 1) / 512) * 512), 0x20);
  bytes.write(text, 'utf8');
  return bytes;
}

/** Run the whole demo. Throws on failure to run; `verified: false` means the data differed. */
export async function runDemo(opts: DemoOptions): Promise<DemoResult> {
  checkDemoSize(opts.sizeBytes);
  const say = (phase: DemoPhase, message: string): void => opts.onEvent?.({ kind: 'phase', phase, message });
  const dir = resolve(opts.dir);
  const libraryDir = join(dir, 'library');
  const lunDir = join(dir, 'luns');
  const createdDir = await mkdir(dir, { recursive: true });
  // Repeatable: a fresh workstation LUN and a fresh library each run.
  await rm(libraryDir, { recursive: true, force: true });
  await rm(lunDir, { recursive: true, force: true });
  const started = performance.now();
  const blockCount = opts.sizeBytes / BLOCK_SIZE;
  const cfg = resolveTargetConfig(
    { listen: '127.0.0.1:0', iqn: DEMO_IQN, blockSize: BLOCK_SIZE, lunDir, library: libraryDir, drives: 1, slots: 4, cartridgeSize: opts.sizeBytes + (64 << 20), logLevel: 'warn' },
    'demo',
  );
  let node: StorageNode | undefined;
  const sessions: InitiatorSession[] = [];
  const login = async (initiatorName: string): Promise<InitiatorSession> => {
    const s = await InitiatorSession.login({ host: node!.address.host, port: node!.address.port, initiatorName, targetName: DEMO_IQN });
    sessions.push(s);
    return s;
  };
  const onAbort = (): void => {
    for (const s of sessions) s.close(); // in-flight commands fail; the copy manager sees the nexus go
  };
  opts.signal?.addEventListener('abort', onAbort, { once: true });
  try {
    node = await startStorageNode(cfg, opts.log);
    const changerLun = 0;
    const driveLun = 1;
    checkAbort(opts.signal);

    // 1. The workstation writes random data to its disk LUN.
    const ws = await node.registry.create({ sizeBytes: opts.sizeBytes });
    say('write', `workstation: writing ${opts.sizeBytes / (1 << 20)} MiB of random data to LUN ${ws.lun} over iSCSI`);
    const wsSession = await login(WORKSTATION_IQN);
    const wsDisk = await RemoteBlockDevice.open(wsSession, ws.lun);
    const hash = createHash('sha256');
    const chunk = Buffer.allocUnsafe(Math.min(WRITE_CHUNK_BYTES, opts.sizeBytes));
    const tw = performance.now();
    for (let off = 0; off < opts.sizeBytes; off += chunk.length) {
      checkAbort(opts.signal);
      const part = chunk.subarray(0, Math.min(chunk.length, opts.sizeBytes - off));
      randomFillSync(part);
      hash.update(part);
      await wsDisk.write(off / BLOCK_SIZE, part);
      opts.onEvent?.({ kind: 'progress', phase: 'write', doneBytes: off + part.length, totalBytes: opts.sizeBytes });
    }
    await wsDisk.flush();
    const writeSeconds = (performance.now() - tw) / 1000;
    const written = hash.digest('hex');
    await wsSession.logout();

    // 2. Snapshot after a quiet period (DESIGN.md "A backup" step 1).
    say('snapshot', `snapshot: waiting for ${opts.quietPeriodMs / 1000} s without writes to LUN ${ws.lun} (timeout ${opts.timeoutMs / 1000} s)`);
    const ts = performance.now();
    const snap = await node.snapshots.createSnapshot(ws.lun, { quietPeriodMs: opts.quietPeriodMs, timeoutMs: opts.timeoutMs });
    const snapSeconds = (performance.now() - ts) / 1000;
    say('snapshot', `snapshot ${snap.id} frozen after waiting ${((snap.waitedMs ?? 0) / 1000).toFixed(2)} s; read-only LUN ${snap.lun}`);
    checkAbort(opts.signal);

    // 3. The backup server: designators, then a cartridge from slot 1 into drive 0.
    const ctl = await login(SERVER_IQN);
    const snapNaa = await naaOf(ctl, snap.lun);
    const driveNaa = await naaOf(ctl, driveLun);
    const slot = ElementBase.STORAGE;
    const drive = ElementBase.DATA_TRANSFER;
    await ctl.command(changerLun, buildMoveMedium(ElementBase.MEDIUM_TRANSPORT, slot, drive));
    await ctl.command(driveLun, testUnitReady()); // takes the medium-changed unit attention
    await ctl.command(driveLun, buildRewind());
    const cartridge = node.tapes.library?.inventory.driveElement(0).barcode ?? '?';
    say('load', `changer: MOVE MEDIUM slot ${slot.toString(16)}h → drive ${drive.toString(16)}h (cartridge ${cartridge}, LUN ${driveLun})`);

    // 4. One EXTENDED COPY to the tape drive's copy manager: header, snapshot blocks, filemark.
    const jobId = randomUUID();
    const header = setHeader({
      jobId,
      createdAt: new Date().toISOString(),
      source: { designator: Buffer.from(snapNaa.designator).toString('hex'), lun: snap.lun, snapshot: snap.id },
      blockSize: BLOCK_SIZE,
      extents: [[0, blockCount]],
      record: TAPE_RECORD_BYTES,
    });
    const SNAP = 0;
    const TAPE = 1;
    const backupSegs: SegmentInput[] = [
      { type: DescriptorType.EMBEDDED_TO_STREAM, cat: false, destination: TAPE, streamTransferLength: header.length, data: header },
      ...dataSegments(DescriptorType.BLOCK_TO_STREAM, blockCount, SNAP, TAPE),
      { type: DescriptorType.WRITE_FILEMARKS, cat: false, destination: TAPE, immed: false, count: 1 },
    ];
    const backupList = encodeXcopyParameterList({ header: { listId: 1, str: false, listIdUsage: 0, priority: 0 }, cscds: [diskCscd(snapNaa), tapeCscd(driveNaa)], segments: backupSegs });
    say('backup', `backup: ONE EXTENDED COPY (${backupList.length}-byte list, ${backupSegs.length} segments: 05h header, ${backupSegs.length - 2}×00h, 10h filemark) to the drive's copy manager`);
    const backup = await runCopy(ctl, driveLun, 1, backupList, opts.sizeBytes + header.length, 'backup', opts);
    checkAbort(opts.signal);

    // 5. Restore into a fresh LUN: rewind, read the header record back, then 01h segments.
    const dst = await node.registry.create({ sizeBytes: opts.sizeBytes });
    const dstNaa = await naaOf(ctl, dst.lun);
    await ctl.command(driveLun, buildRewind());
    const rec = await ctl.command(driveLun, buildRead6(header.length, { sili: true }), { inLength: header.length });
    let onTape: Record<string, unknown> | null = null;
    try {
      onTape = JSON.parse(Buffer.from(rec.data).toString('utf8').trimEnd()) as Record<string, unknown>;
    } catch {
      onTape = null;
    }
    if (onTape?.jobId !== jobId) throw new FerryError('ERR_DEMO', 'the set header read back from tape does not name this job');
    const restoreSegs = dataSegments(DescriptorType.STREAM_TO_BLOCK, blockCount, 0, 1);
    const restoreList = encodeXcopyParameterList({ header: { listId: 2, str: false, listIdUsage: 0, priority: 0 }, cscds: [tapeCscd(driveNaa), diskCscd(dstNaa)], segments: restoreSegs });
    say('restore', `restore: header read back (job ${jobId}); ONE EXTENDED COPY with ${restoreSegs.length}×01h segments, tape → fresh LUN ${dst.lun}`);
    const restore = await runCopy(ctl, driveLun, 2, restoreList, opts.sizeBytes, 'restore', opts);
    const serverBytesOnWire = wire(ctl);
    await ctl.logout();

    // 6. Verify: digests where the data lives, and the restored LUN read back over iSCSI.
    say('verify', `verify: SHA-256 of the snapshot and the restored LUN on the node, and LUN ${dst.lun} read over iSCSI`);
    const tv = performance.now();
    // The node hashes its two LUNs while the restored one is read back over iSCSI.
    const whole = [{ lba: 0, blocks: blockCount }];
    const onNode = Promise.all([node.snapshots.digest(snap.lun, whole), node.snapshots.digest(dst.lun, whole)]);
    onNode.catch(() => undefined);
    const vs = await login(VERIFY_IQN);
    const vDisk = await RemoteBlockDevice.open(vs, dst.lun, { readOnly: true });
    const vh = createHash('sha256');
    for (let lba = 0; lba < blockCount; lba += chunk.length / BLOCK_SIZE) {
      checkAbort(opts.signal);
      const n = Math.min(chunk.length / BLOCK_SIZE, blockCount - lba);
      const part = chunk.subarray(0, n * BLOCK_SIZE);
      await vDisk.readInto(lba, part);
      vh.update(part);
      opts.onEvent?.({ kind: 'progress', phase: 'verify', doneBytes: (lba + n) * BLOCK_SIZE, totalBytes: opts.sizeBytes });
    }
    const overIscsi = vh.digest('hex');
    const [snapDigest, dstDigest] = (await onNode).map((d) => d.sha256);
    const verifySeconds = (performance.now() - tv) / 1000;
    const verifyBytesOnWire = wire(vs);
    await vs.logout();
    // DESIGN.md "A backup" step 5: the snapshot has served its purpose.
    await node.snapshots.deleteSnapshot(snap.id);
    say('verify', `snapshot ${snap.id} deleted (LUN ${snap.lun} unmapped)`);

    const moverBytes = backup.moverBytes + restore.moverBytes;
    const ratio = moverBytes > 0 ? serverBytesOnWire / moverBytes : Infinity;
    return {
      sizeBytes: opts.sizeBytes,
      blockSize: BLOCK_SIZE,
      luns: { workstation: ws.lun, snapshot: snap.lun, restored: dst.lun, changer: changerLun, drive: driveLun },
      cartridge,
      snapshot: { id: snap.id, quietPeriodMs: opts.quietPeriodMs, waitedMs: snap.waitedMs, seconds: Math.round(snapSeconds * 1000) / 1000 },
      write: { seconds: Math.round(writeSeconds * 1000) / 1000, mbPerSecond: mbps(opts.sizeBytes, writeSeconds), workstationBytesOnWire: wire(wsSession) },
      backup,
      restore,
      moverBytes,
      serverBytesOnWire,
      ratio,
      serverless: ratio < 0.001,
      header: onTape,
      sha256: { written, snapshot: snapDigest, restored: dstDigest, restoredOverIscsi: overIscsi },
      verifyBytesOnWire,
      verifySeconds: Math.round(verifySeconds * 1000) / 1000,
      verified: written === snapDigest && snapDigest === dstDigest && dstDigest === overIscsi,
      seconds: Math.round((performance.now() - started) / 10) / 100,
    };
  } finally {
    opts.signal?.removeEventListener('abort', onAbort);
    for (const s of sessions) s.close();
    await node?.close();
    if (!opts.keep) {
      await rm(libraryDir, { recursive: true, force: true });
      await rm(lunDir, { recursive: true, force: true });
      if (createdDir) await rmdir(dir).catch(() => undefined);
    }
  }
}
