// The test harness's own teardown: dropping a test database must not turn a
// connection that is still closing into an error after the test ended (it
// did, now and then, for the device pools of the races tests: pg.Pool's
// end() resolves before its sockets close, and DROP ... WITH (FORCE)
// terminated them). The interleaving is forced: the client's Terminate
// message is held back while the drop begins.

import assert from 'node:assert/strict';
import { it } from 'node:test';
import pg from 'pg';
import { createTestDatabase } from './harness/db.js';

it('dropping a test database waits for a session that is still closing: its client sees no error', async () => {
  const db = await createTestDatabase({ migrate: false });
  const client = new pg.Client({ connectionString: db.url });
  await client.connect();
  await client.query('SELECT 1');
  const errors: string[] = [];
  client.on('error', (e) => errors.push(e.message));
  // the Terminate message leaves 300 ms late, as a pool's sockets close after its end() resolved
  const connection = (client as unknown as { connection: { end(): void } }).connection;
  const send = connection.end.bind(connection);
  connection.end = () => void setTimeout(send, 300).unref();
  const ended = client.end();
  await db.drop();
  await ended;
  assert.deepEqual(errors, [], 'the drop terminated a session that was closing');
});
