import { SenseError, SenseKey, Asc, encodeSense, type SenseFormat } from './sense.ts';
import { ScsiStatus, type ScsiResult, type ScsiTask } from './task.ts';
import { DecodeError } from '../util/errors.ts';

/**
 * What a handler returns: a full result, or just the Data-In bytes (GOOD), or nothing (GOOD, no data).
 * Handlers decode their CDB with a pure function and throw SenseError for anything wrong.
 */
export type HandlerResult = ScsiResult | Uint8Array | void;
export type Handler<L> = (task: ScsiTask, lu: L) => Promise<HandlerResult> | HandlerResult;

export interface CommandEntry<L> {
  readonly name: string;
  readonly handler: Handler<L>;
  /** CDB length in bytes (for REPORT SUPPORTED OPERATION CODES and the length check). */
  readonly cdbLength: number;
  /** Service actions, if the opcode has them (CDB byte 1 bits 4:0). */
  readonly serviceActions?: ReadonlyMap<number, CommandEntry<L>>;
  /**
   * SPC-4 5.13 Table 64 (persistent reservations) / SPC-2 5.5.1 (RESERVE(6)): how the command
   * fares under a reservation held by another I_T nexus. 'allowed': never conflicts;
   * 'read': conflicts only under Exclusive Access types; 'write' (default): conflicts under any type.
   */
  readonly pr?: 'allowed' | 'read' | 'write';
  /**
   * Reported by REPORT SUPPORTED OPERATION CODES: CDB usage bitmap (byte 0 = opcode); default all bits of cdbLength.
   */
  readonly usage?: Uint8Array;
}

/** One table per device type (SBC, SSC, SMC), with the SPC entries spread in. */
export type CommandTable<L> = ReadonlyMap<number, CommandEntry<L>>;

export interface RunOptions<L = unknown> {
  /** Called for errors that are not SenseError (bugs): they become HARDWARE ERROR 44h/00h. */
  onInternalError?: (err: unknown, task: ScsiTask) => void;
  /**
   * Runs before the handler (entry undefined for unsupported opcodes): may throw SenseError
   * (unit attention, not ready) or return a result that ends the command (RESERVATION CONFLICT).
   */
  gate?: (entry: CommandEntry<L> | undefined, task: ScsiTask) => ScsiResult | undefined;
  /** The LU's sense format after the command (D_SENSE, SPC-4 7.5.8); default fixed. */
  senseFormat?: () => SenseFormat;
}

/** Look up an opcode (and its service action) in a table; undefined when unsupported. */
export function lookupCommand<L>(table: CommandTable<L>, cdb: Uint8Array): CommandEntry<L> | undefined {
  const entry = table.get(cdb[0]);
  if (!entry?.serviceActions) return entry;
  return entry.serviceActions.get(cdb[1] & 0x1f);
}

/** The one place a CHECK CONDITION is built (`runCommand` passes the LU's format). SAM-5 5.3 */
export function checkCondition(err: SenseError, format: SenseFormat = 'fixed'): ScsiResult {
  return { status: ScsiStatus.CHECK_CONDITION, sense: encodeSense(err, format), senseData: err };
}

/**
 * Dispatch a task through a command table; every thrown error becomes a well-formed status.
 * The one place a response's sense format is chosen: the LU's D_SENSE (SPC-4 7.5.8), read when
 * the command ends, for thrown errors and for CHECK CONDITION results a handler returns.
 */
export async function runCommand<L>(
  table: CommandTable<L>,
  lu: L,
  task: ScsiTask,
  opts: RunOptions<L> = {},
): Promise<ScsiResult> {
  const format = (): SenseFormat => opts.senseFormat?.() ?? 'fixed';
  try {
    if (task.cdb.length === 0) throw new SenseError(SenseKey.ILLEGAL_REQUEST, Asc.INVALID_COMMAND_OPERATION_CODE);
    const top = table.get(task.cdb[0]);
    const entry = lookupCommand(table, task.cdb);
    const gated = opts.gate?.(entry, task);
    if (gated) return gated;
    if (!entry) {
      // SPC-4 4.5.2.4.2: point at the opcode, or at the service action field.
      const field = top?.serviceActions ? 1 : 0;
      throw new SenseError(
        SenseKey.ILLEGAL_REQUEST,
        top ? Asc.INVALID_FIELD_IN_CDB : Asc.INVALID_COMMAND_OPERATION_CODE,
        {
          fieldPointer: { cd: true, field, bit: top ? 4 : 7 },
        },
      );
    }
    if (task.cdb.length < entry.cdbLength) throw new SenseError(SenseKey.ILLEGAL_REQUEST, Asc.INVALID_FIELD_IN_CDB);
    const out = await entry.handler(task, lu);
    if (out === undefined) return { status: ScsiStatus.GOOD };
    if (out instanceof Uint8Array) return { status: ScsiStatus.GOOD, dataIn: out };
    if (out.senseData && format() !== 'fixed') return { ...out, sense: encodeSense(out.senseData, format()) };
    return out;
  } catch (err) {
    if (err instanceof SenseError) return checkCondition(err, format());
    if (err instanceof DecodeError) {
      return checkCondition(new SenseError(SenseKey.ILLEGAL_REQUEST, Asc.INVALID_FIELD_IN_CDB), format());
    }
    opts.onInternalError?.(err, task);
    return checkCondition(new SenseError(SenseKey.HARDWARE_ERROR, Asc.INTERNAL_TARGET_FAILURE), format());
  }
}
