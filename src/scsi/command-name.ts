import { ScsiOpcode } from './opcodes.ts';

/** A CDB's command in words, for messages (`RECEIVE COPY RESULTS (COPY STATUS)`). */
const NAMES = new Map<number, string>();
for (const [name, op] of Object.entries(ScsiOpcode))
  NAMES.set(op, name.replace(/_(\d+)$/, '($1)').replaceAll('_', ' '));
/** SPC-4 6.18: RECEIVE COPY RESULTS service actions. */
const RCR_SA: Record<number, string> = {
  0x00: 'COPY STATUS',
  0x01: 'RECEIVE DATA',
  0x03: 'OPERATING PARAMETERS',
  0x04: 'FAILED SEGMENT DETAILS',
};

export function commandName(cdb: Uint8Array): string {
  const op = cdb[0] ?? 0;
  const name = NAMES.get(op) ?? `opcode ${op.toString(16).padStart(2, '0')}h`;
  if (op === ScsiOpcode.RECEIVE_COPY_RESULTS)
    return `${name} (${RCR_SA[cdb[1] & 0x1f] ?? `SA ${(cdb[1] & 0x1f).toString(16)}h`})`;
  return name;
}
