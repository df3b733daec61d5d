import type { LogicalUnit } from '../scsi/task.ts';
import type { ChapSecret } from '../iscsi/chap.ts';
import { isIscsiName, ISCSI_NAME_HINT } from '../iscsi/names.ts';

export interface TargetOptions {
  name: string;
  alias?: string;
  /** One-way CHAP: the initiator must prove it knows this secret. */
  chap?: ChapSecret;
  /** Mutual CHAP: the target's own name and secret, sent when the initiator challenges. */
  mutualChap?: ChapSecret;
  /** Initiator names allowed to log in; undefined = everyone. */
  allowedInitiators?: readonly string[];
}

/** An iSCSI target node: a name, its LUN map, and who may log in. RFC 7143 4.2.7 */
export class Target {
  readonly name: string;
  readonly alias?: string;
  readonly chap?: ChapSecret;
  readonly mutualChap?: ChapSecret;
  readonly luns = new Map<number, LogicalUnit>();
  private readonly allowed?: ReadonlySet<string>;

  constructor(opts: TargetOptions) {
    if (!isIscsiName(opts.name)) throw new RangeError(`"${opts.name}" is not an iSCSI name (${ISCSI_NAME_HINT})`);
    this.name = opts.name;
    this.alias = opts.alias;
    this.chap = opts.chap;
    this.mutualChap = opts.mutualChap;
    this.allowed = opts.allowedInitiators ? new Set(opts.allowedInitiators) : undefined;
  }

  allows(initiatorName: string): boolean {
    return !this.allowed || this.allowed.has(initiatorName);
  }

  addLun(lun: number, lu: LogicalUnit): void {
    if (this.luns.has(lun)) throw new RangeError(`LUN ${lun} is already mapped on ${this.name}`);
    this.luns.set(lun, lu);
  }

  removeLun(lun: number): LogicalUnit | undefined {
    const lu = this.luns.get(lun);
    this.luns.delete(lun);
    return lu;
  }

  /** The lowest LUN not in use. */
  nextFreeLun(): number {
    let n = 0;
    while (this.luns.has(n)) n++;
    return n;
  }
}
