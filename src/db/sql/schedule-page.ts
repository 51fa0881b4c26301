// One page of the schedule as the load hands it to the reactor
// (src/db/sql/load-schedule.ts): fixed-size binary records of 44 bytes a
// mission, read in place. A million missions arrive as a hundred buffers,
// not as a million row arrays of boxed numbers for the garbage collector.
// Pure: no I/O.

/** Bytes per packed mission: sid 8, version 8, partition 4, due ms 8, agent ref 8 (-1 = none), user ref 8. */
export const RECORD = 44;

/** One page of the schedule, read in place. */
export class SchedulePage {
  readonly length: number;
  // A DataView reads an int32 in one step; Buffer's readInt32BE assembles
  // it from four byte reads with checks, and a load reads six values a
  // mission, a million missions at a cold start.
  private readonly view: DataView;
  constructor(buf: Buffer) {
    this.length = buf.length / RECORD;
    this.view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  }
  // int8 as two int32 halves (big-endian, as int8send writes them): exact for every value in ±2^53, no BigInt per value
  private int8(at: number): number {
    return this.view.getInt32(at) * 4_294_967_296 + this.view.getUint32(at + 4);
  }
  sid(i: number): number {
    return this.int8(i * RECORD);
  }
  version(i: number): number {
    return this.int8(i * RECORD + 8);
  }
  partition(i: number): number {
    return this.view.getInt32(i * RECORD + 16);
  }
  dueMs(i: number): number {
    return this.int8(i * RECORD + 20);
  }
  /** -1 = no agent */
  agentRef(i: number): number {
    return this.int8(i * RECORD + 28);
  }
  userRef(i: number): number {
    return this.int8(i * RECORD + 36);
  }
}
