// undici is loaded when the first request needs it, not at start
// (src/lazy-undici.ts, issue 30's cold start): the daemon's modules load
// without it, the LLM client makes its pool on the first request (or
// prepare()), once, and a client closed before any request makes none and
// sends nothing.

import assert from 'node:assert/strict';
import { pathToFileURL } from 'node:url';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { LlmClient, LlmError } from '../src/planner/llm-client.js';
import { planAnswer, startLlmServer, type LlmServer } from './harness/llm-server.js';
import { REPO_ROOT } from './harness/repo-root.js';
import { runNodeAsync } from './harness/run-node.js';

const client = (url: string) =>
  new LlmClient({ baseUrl: url, serviceKey: undefined, model: 'test', temperature: 0.2, timeoutMs: 10_000, maxAttempts: 1, retryBaseMs: 10 });

describe('undici on first use', () => {
  let llm: LlmServer;
  before(async () => {
    llm = await startLlmServer(() => ({ content: planAnswer() }));
  });
  after(async () => {
    await llm?.close();
  });

  it('importing the daemon and everything it imports loads no undici', async () => {
    // a process of its own: this one has undici loaded already (the LLM test server's clients)
    const daemon = pathToFileURL(join(REPO_ROOT, 'src', 'daemon.ts')).href;
    const code = `import { createRequire } from 'node:module';
      await import(${JSON.stringify(daemon)});
      const modules = Object.keys(createRequire(import.meta.url).cache);
      console.log(JSON.stringify({ modules: modules.length, undici: modules.filter((k) => k.includes('/node_modules/undici/')).length }));`;
    const run = await runNodeAsync(['--input-type=module', '-e', code]);
    assert.equal(run.status, 0, run.stderr);
    const seen = JSON.parse(run.stdout.trim().split('\n').pop()!) as { modules: number; undici: number };
    assert.ok(seen.modules > 10, `the check sees the CommonJS modules the daemon loaded (${seen.modules})`);
    assert.equal(seen.undici, 0, 'no module of undici was evaluated');
  });

  it('the first request makes the pool; prepare() made side by side makes it once', async () => {
    const c = client(llm.url);
    try {
      const [a, b] = await Promise.all([c.prepare(), c.prepare()]);
      assert.equal(a, b);
      const before = llm.requests.length;
      const answer = await c.complete([{ role: 'user', content: 'hallo' }]);
      assert.match(answer.content, /Plan für heute/);
      assert.equal(llm.requests.length, before + 1);
      assert.equal(await c.prepare(), a, 'the request used the pool prepare() made');
    } finally {
      await c.close();
    }
    // and without prepare(): the request makes it
    const d = client(llm.url);
    try {
      assert.match((await d.complete([{ role: 'user', content: 'hallo' }])).content, /Plan für heute/);
    } finally {
      await d.close();
    }
  });

  it('a client closed before any request sends nothing and answers aborted', async () => {
    const c = client(llm.url);
    await c.close();
    const before = llm.requests.length;
    await assert.rejects(c.complete([{ role: 'user', content: 'hallo' }]), (e: unknown) => e instanceof LlmError && e.reason === 'aborted');
    await assert.rejects(c.prepare(), (e: unknown) => e instanceof LlmError && e.reason === 'aborted');
    assert.equal(llm.requests.length, before);
  });
});
