import { test } from 'node:test';
import assert from 'node:assert/strict';
import { CopyFailedError } from '../initiator/copy-client.ts';
import { IscsiError } from '../initiator/session.ts';
import { Asc, SenseDataSource, SenseError, SenseKey, decodeSense, encodeFixedSense } from '../scsi/sense.ts';
import { ScsiStatus } from '../scsi/task.ts';
import { FerryError } from '../util/errors.ts';
import { moverFault } from './tape-io.ts';

// Which copy failures are the data mover's own (the job goes on on another mover) and which are
// a device's or the list's (the job fails with that error).

const failed = (e: SenseError): CopyFailedError =>
  new CopyFailedError('backup of store:0', ScsiStatus.CHECK_CONDITION, decodeSense(encodeFixedSense(e)));

test(
  "moverFault: a lost session, a stall and a COPY ABORTED of the mover itself are the mover's; forwarded device " +
    'sense and ILLEGAL REQUEST are not',
  () => {
    assert.match(
      moverFault(new IscsiError('ERR_ISCSI_CLOSED', 'connection closed by the target')) ?? '',
      /^its session was lost \(connection closed by the target\)$/,
    );
    assert.match(
      moverFault(
        new FerryError(
          'ERR_COPY_STALLED',
          'backup of store:0: the copy manager reported no progress for 120 s (at 5 bytes)',
        ),
      ) ?? '',
      /no progress for 120 s/,
    );
    const own = failed(
      new SenseError(SenseKey.COPY_ABORTED, Asc.COPY_TARGET_DEVICE_NOT_REACHABLE, { commandSpecific: 3 }),
    );
    assert.equal(own.culprit, 'copy manager');
    assert.match(moverFault(own) ?? '', /^it aborted the copy \(COPY ABORTED: COPY TARGET DEVICE NOT REACHABLE/i);
    // The tape's own sense forwarded (a full cartridge): the device's failure, not the mover's.
    const tapeSense = encodeFixedSense(new SenseError(SenseKey.VOLUME_OVERFLOW, Asc.NO_ADDITIONAL_SENSE));
    const fwd = failed(
      new SenseError(SenseKey.COPY_ABORTED, Asc.COPY_TARGET_DEVICE_NOT_REACHABLE, {
        forwarded: { source: SenseDataSource.COPY_DESTINATION, status: ScsiStatus.CHECK_CONDITION, sense: tapeSense },
      }),
    );
    assert.equal(fwd.culprit, 'destination');
    assert.equal(moverFault(fwd), undefined);
    assert.equal(
      moverFault(failed(new SenseError(SenseKey.ILLEGAL_REQUEST, Asc.INVALID_FIELD_IN_PARAMETER_LIST))),
      undefined,
    );
    assert.equal(moverFault(new FerryError('ERR_CANCELED', 'job 3 was canceled')), undefined);
  },
);
