import { connect, Socket, type NetConnectOpts } from 'node:net';

/**
 * Sockets that read into buffers we choose instead of a fresh 64 KiB chunk per read (Node's
 * `onread` option). On loopback this doubles receive throughput and removes the chunk garbage.
 * By default a read lands in one fixed buffer per connection: the chunk handed to `receive`
 * is a view of it, overwritten by the next read, so the reader copies what it keeps before it
 * returns (the iSCSI framer does). A reader that knows where the next bytes belong (the rest
 * of a data segment) offers that region with `direct()`, and the next read lands there.
 */
export interface ChunkReader {
  receive(chunk: Buffer): void;
  /** Where the next read should land, if the reader knows (a data segment's remaining bytes). */
  direct?(): Uint8Array | undefined;
  /** `n` bytes arrived in the region `direct()` offered. */
  receivedDirect?(n: number): void;
}

/**
 * Default read buffer (per connection). Small on purpose: a read that starts at a PDU header
 * takes at most this much of the data segment after it through the buffer (one userspace
 * copy); the rest of the segment is read straight into its destination (docs/benchmarks.md,
 * the tape section, for the sizes measured).
 */
export const READ_BUFFER_BYTES = 16 << 10;

/** Direct reads below this size are not worth a separate read: they go through the buffer. */
const MIN_DIRECT_BYTES = 16 << 10;

function onread(
  reader: ChunkReader,
  size: number,
): { buffer: () => Uint8Array; callback: (n: number, buf: Uint8Array) => boolean } {
  const shared = Buffer.allocUnsafe(size);
  return {
    // Called before the first read and after each one: the buffer the next read fills.
    buffer: () => {
      const d = reader.direct?.();
      return d && d.length >= MIN_DIRECT_BYTES ? d : shared;
    },
    callback: (n, buf) => {
      if (buf === shared) reader.receive(shared.subarray(0, n));
      else reader.receivedDirect!(n);
      return true; // flow control is the socket's pause()/resume()
    },
  };
}

/** A client connection whose reads land in one buffer. */
export function connectWithReadBuffer(opts: NetConnectOpts, reader: ChunkReader, size = READ_BUFFER_BYTES): Socket {
  return connect({ ...opts, onread: onread(reader, size) });
}

interface HandleOwner {
  _handle?: { useUserBuffer?: unknown } | null;
}

/**
 * An accepted connection, re-wrapped so that its reads land in one buffer. `net.Server` has no
 * `onread` option, so the server must be created with `pauseOnConnect: true`; the accepted
 * socket's handle moves to a new Socket built with `onread`, and the empty husk is destroyed
 * (which settles the server's connection count). Where the handle is not reachable, the
 * accepted socket is used as is, with a 'data' listener.
 */
export function adoptWithReadBuffer(accepted: Socket, reader: ChunkReader, size = READ_BUFFER_BYTES): Socket {
  const husk = accepted as unknown as HandleOwner;
  const handle = husk._handle;
  if (!handle || typeof handle.useUserBuffer !== 'function') {
    accepted.on('data', (chunk: Buffer) => reader.receive(chunk));
    accepted.resume();
    return accepted;
  }
  husk._handle = null;
  accepted.destroy();
  return new Socket({ handle, readable: true, writable: true, onread: onread(reader, size) } as ConstructorParameters<
    typeof Socket
  >[0]);
}
