import type { Socket } from 'node:net';

/**
 * Holds a socket corked until the event loop has handled what is ready (setImmediate), so
 * the PDUs written in one turn leave as one writev and wake the peer once. The target uses
 * it for command responses: with several commands in flight, a turn often completes more
 * than one. Initiators do not use it: their new commands would wait. Measurements:
 * docs/benchmarks.md, the tape section.
 */
export class TurnCork {
  private held = false;
  private readonly socket: Socket;

  constructor(socket: Socket) {
    this.socket = socket;
  }

  hold(): void {
    if (this.held || this.socket.destroyed) return;
    this.held = true;
    this.socket.cork();
    setImmediate(() => {
      this.held = false;
      this.socket.uncork();
    });
  }
}
