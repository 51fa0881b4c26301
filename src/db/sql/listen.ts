// LISTEN on the daemon's channels (src/reactor/listener.ts holds the
// connection). A channel name is an identifier, never a parameter: it is
// quoted, and only the daemon's own constants are passed.

import pg from 'pg';

export async function listen(client: pg.ClientBase, channels: readonly string[]): Promise<void> {
  for (const channel of channels) await client.query(`LISTEN ${pg.escapeIdentifier(channel)}`);
}
