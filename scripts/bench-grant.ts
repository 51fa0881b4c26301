// `npm run bench:grant`: what opening a v2 Mission Grant costs (issue 29;
// CONTRACT.md section 14): a grant of 256 records (the scope limit), built
// with the reference module as mana-auth would, opened by the runner's
// unwrap (RSA-OAEP, the sealed key table, 256 non-extractable record keys
// imported), and then every record's two `enc:2:` fields decrypted as the
// resolver does. In-process, no database: the grant state is one indexed
// read in the run's transaction. Prints p50/p99 for docs/performance.md.

import { generateKeyPairSync, webcrypto } from 'node:crypto';
import { parseArgs } from 'node:util';
import * as ref from '../grant-v2/index.js';
import { loadPrivateKey, type LoadedKey } from '../src/grants/private-key.js';
import { runnerKeys } from '../src/grants/runner-keys.js';
import { decryptRecord } from '../src/grants/decrypt.js';
import { v2Opener } from '../src/grants/v2/decrypt-v2.js';
import { unwrapGrantV2 } from '../src/grants/v2/unwrap-v2.js';
import { machine, percentile } from './lib/bench-db.js';

const { values } = parseArgs({ options: { records: { type: 'string', default: '256' }, rounds: { type: 'string', default: '200' }, help: { type: 'boolean', default: false } } });
if (values.help) {
  console.log(`usage: npm run bench:grant -- [--records N] [--rounds R]

Builds a v2 grant of N records (default 256) and opens it R times (default
200) with the runner's unwrap, then decrypts every record's two enc:2:
fields R times. Prints p50/p99 in milliseconds.`);
  process.exit(0);
}
const N = Number(values.records);
const R = Number(values.rounds);

const pair = generateKeyPairSync('rsa', { modulusLength: 2048, publicKeyEncoding: { type: 'spki', format: 'pem' }, privateKeyEncoding: { type: 'pkcs8', format: 'pem' } });
const load = await loadPrivateKey(pair.privateKey);
if (load.status !== 'loaded') throw new Error('the bench key did not load');
const keys = runnerKeys(load as LoadedKey);
const vault = ref.createRecordKeys(await ref.importRecordKeyRoot(webcrypto.getRandomValues(new Uint8Array(32))));
const ids = Array.from({ length: N }, (_, i) => `note-${String(i).padStart(4, '0')}`);
const records = await Promise.all(ids.map((id) => ref.encryptRecord(vault, { userId: 'bench-user', table: 'notes', recordId: id },
  { title: `Notiz ${id}`, content: `Inhalt der Notiz ${id}, ein paar Sätze lang, wie eine echte Notiz.`, pinned: false }, ['title', 'content'])));
const grant = await ref.buildGrant({ keys: vault, userId: 'bench-user', missionId: 'bench-mission', runner: await ref.importRunnerPublicKey(pair.publicKey), records: ids.map((id) => ({ table: 'notes', id, epoch: 0 })) });
const ctx = { userId: 'bench-user', missionId: 'bench-mission', nowMs: Date.now(), isRevoked: () => false };

const open: number[] = [];
const decrypt: number[] = [];
for (let round = 0; round < R + 10; round++) {
  const t0 = performance.now();
  const r = await unwrapGrantV2(keys, grant, ctx);
  const t1 = performance.now();
  if (!r.ok) throw new Error(`the grant did not open: ${r.reason}`);
  for (let i = 0; i < N; i++) {
    const d = await decryptRecord(v2Opener(r.grant, { userId: 'bench-user', table: 'notes', recordId: ids[i]! }), records[i]!);
    if (!d.ok) throw new Error(`record ${ids[i]} did not open: ${d.reason}`);
  }
  const t2 = performance.now();
  if (round >= 10) { // the first rounds warm up the JIT
    open.push(t1 - t0);
    decrypt.push(t2 - t1);
  }
}
const ms = (xs: number[], p: number) => percentile(xs, p).toFixed(1);
console.log(machine());
console.log(`open a ${N}-record v2 grant (unwrap, key table, ${N} record keys imported): p50 ${ms(open, 50)} ms, p99 ${ms(open, 99)} ms over ${R} rounds (target < 100 ms)`);
console.log(`decrypt ${N} records × 2 enc:2: fields with it: p50 ${ms(decrypt, 50)} ms, p99 ${ms(decrypt, 99)} ms`);
process.exit(percentile(open, 99) < 100 ? 0 : 1);
