// Turns the schedule's binary COPY stream (src/db/sql/load-schedule.ts)
// into SchedulePages: PostgreSQL's binary COPY format, six fixed-width
// columns a row (sid int8, version int8, partition int4, next_run_at
// timestamptz, agent ref int8 with -1 for none, user ref int8), arriving in
// chunks that cut rows anywhere. Each complete row is repacked into the
// page's 44-byte record; the timestamp (microseconds since 2000-01-01 UTC,
// as PostgreSQL stores it) becomes epoch milliseconds here, which spares
// the database a numeric extract() per row (issue 30: 1 s of a million
// rows' load). Pure: no I/O. Never guesses: a stream that does not look
// like those six columns is an error, not a schedule.

import { RECORD, SchedulePage } from './schedule-page.js';

const SIGNATURE = Buffer.from('PGCOPY\n\xff\r\n\0', 'latin1');
/** Per row: field count (2), then per field its length (4) and bytes. */
const FIELDS = [8, 8, 4, 8, 8, 8] as const;
const ROW = 2 + FIELDS.length * 4 + FIELDS.reduce((a, b) => a + b, 0);
/** 2000-01-01T00:00:00Z in epoch milliseconds: PostgreSQL's timestamp epoch. */
const PG_EPOCH_MS = 946_684_800_000;
const TWO_32 = 4_294_967_296;

export class ScheduleCopyError extends Error {
  override name = 'ScheduleCopyError';
}

export class ScheduleCopyReader {
  /** bytes of a row (or of the header) cut off at the end of the last chunk */
  private carry: Buffer | null = null;
  private headerRead = false;
  private ended = false;
  private out: Buffer;
  private view: DataView;
  private count = 0;

  constructor(private readonly pageSize = 10_000) {
    this.out = Buffer.allocUnsafe(pageSize * RECORD);
    this.view = new DataView(this.out.buffer, this.out.byteOffset, this.out.byteLength);
  }

  /** Takes one chunk; answers the pages it completed. */
  push(chunk: Buffer): SchedulePage[] {
    if (this.ended) {
      if (chunk.length === 0) return [];
      throw new ScheduleCopyError('data after the COPY trailer');
    }
    const buf = this.carry ? Buffer.concat([this.carry, chunk]) : chunk;
    this.carry = null;
    const v = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
    let at = 0;
    const pages: SchedulePage[] = [];
    if (!this.headerRead) {
      // signature (11), flags (4), header extension length (4) and its bytes
      if (buf.length < 19) return this.keep(buf, 0, pages);
      if (!buf.subarray(0, 11).equals(SIGNATURE)) throw new ScheduleCopyError('not a binary COPY stream (signature)');
      if ((v.getUint32(11) & 0x10000) !== 0) throw new ScheduleCopyError('a binary COPY stream with OIDs');
      const ext = v.getUint32(15);
      if (buf.length < 19 + ext) return this.keep(buf, 0, pages);
      at = 19 + ext;
      this.headerRead = true;
    }
    while (at + 2 <= buf.length) {
      const fields = v.getInt16(at);
      if (fields === -1) {
        this.ended = true;
        at += 2;
        if (at !== buf.length) throw new ScheduleCopyError('data after the COPY trailer');
        return pages;
      }
      if (fields !== FIELDS.length) throw new ScheduleCopyError(`a row of ${fields} columns, expected ${FIELDS.length}`);
      if (at + ROW > buf.length) break;
      let f = at + 2;
      for (const width of FIELDS) {
        const len = v.getInt32(f);
        if (len !== width) throw new ScheduleCopyError(`a column of ${len} bytes, expected ${width} (a NULL or another type)`);
        f += 4 + width;
      }
      this.record(v, at + 2);
      at += ROW;
      if (this.count === this.pageSize) pages.push(this.flush());
    }
    return this.keep(buf, at, pages);
  }

  /** The stream ended: the last, partial page (null when empty). Throws if the stream stopped inside a row or before its trailer. */
  end(): SchedulePage | null {
    if (!this.ended) throw new ScheduleCopyError(this.carry ? 'the COPY stream stopped inside a row' : 'the COPY stream ended without its trailer');
    return this.count > 0 ? this.flush() : null;
  }

  private keep(buf: Buffer, at: number, pages: SchedulePage[]): SchedulePage[] {
    // a copy, not a view: the chunk's memory is not held for a few bytes
    if (at < buf.length) this.carry = Buffer.from(buf.subarray(at));
    return pages;
  }

  // v at `at`: the first field's length word; each value follows its 4-byte length
  private record(v: DataView, at: number): void {
    const o = this.count * RECORD;
    const w = this.view;
    // sid, version: int8 copied as they are (both halves)
    w.setUint32(o, v.getUint32(at + 4));
    w.setUint32(o + 4, v.getUint32(at + 8));
    w.setUint32(o + 8, v.getUint32(at + 16));
    w.setUint32(o + 12, v.getUint32(at + 20));
    w.setInt32(o + 16, v.getInt32(at + 28));
    // microseconds since 2000 → epoch ms, floored as floor(extract(epoch) * 1000) is;
    // ±infinity become far-off due times (a year ±292,000), never a failed load
    const us = v.getInt32(at + 36) * TWO_32 + v.getUint32(at + 40);
    const due = Math.floor(us / 1000) + PG_EPOCH_MS;
    w.setInt32(o + 20, Math.floor(due / TWO_32));
    w.setUint32(o + 24, due >>> 0);
    w.setUint32(o + 28, v.getUint32(at + 48));
    w.setUint32(o + 32, v.getUint32(at + 52));
    w.setUint32(o + 36, v.getUint32(at + 60));
    w.setUint32(o + 40, v.getUint32(at + 64));
    this.count += 1;
  }

  private flush(): SchedulePage {
    const page = new SchedulePage(this.out.subarray(0, this.count * RECORD));
    this.out = Buffer.allocUnsafe(this.pageSize * RECORD);
    this.view = new DataView(this.out.buffer, this.out.byteOffset, this.out.byteLength);
    this.count = 0;
    return page;
  }
}
