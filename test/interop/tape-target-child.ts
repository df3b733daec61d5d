// A Ferry tape target in its own process, for the SIGKILL crash test: one stand-alone drive
// over the cartridge given as argv[2], on 127.0.0.1:<random port>; prints "PORT <n>" when ready.
import { Target } from '../../src/iscsi-target/target.ts';
import { TargetServer } from '../../src/iscsi-target/server.ts';
import { openStandaloneDrive } from '../../src/storage-node/tape-library.ts';

const cart = process.argv[2];
const target = new Target({ name: 'iqn.2026-11.dev.ferry:vtl' });
target.addLun(0, await openStandaloneDrive(cart, { createSizeBytes: 256 << 20 }));
const server = new TargetServer({ targets: [target] });
const { port } = await server.listen('127.0.0.1', 0);
process.stdout.write(`PORT ${port}\n`);
