// An OpenAI-compatible stand-in for mana-llm in a process of its own, for
// the benchmarks (scripts/bench-vs-graphile.ts): it answers every request at
// once with a one-step plan, and reports when each mission's request
// arrived (wall-clock ms with sub-ms precision: performance.timeOrigin +
// performance.now(), comparable across processes on one machine). In its
// own process, as mana-llm is, so its work is not the daemon's event loop's.

import { fork, type ChildProcess } from 'node:child_process';
import { createServer } from 'node:http';
import { fileURLToPath } from 'node:url';

export interface LlmStandIn {
  url: string;
  /** arrival times by mission title, as reported */
  arrived: Map<string, number>;
  /** resolves once the arrival of `title` is known */
  arrival(title: string): Promise<number>;
  close(): Promise<void>;
}

const nowMs = () => performance.timeOrigin + performance.now();

export async function startLlmStandIn(): Promise<LlmStandIn> {
  const child: ChildProcess = fork(fileURLToPath(import.meta.url), ['--serve'], { execArgv: import.meta.url.endsWith('.ts') ? ['--import', 'tsx'] : [], stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  const arrived = new Map<string, number>();
  const waiting = new Map<string, (at: number) => void>();
  const url = await new Promise<string>((resolve, reject) => {
    child.once('error', reject);
    child.on('message', (m: { url?: string; title?: string; at?: number }) => {
      if (m.url) resolve(m.url);
      if (m.title !== undefined && m.at !== undefined) {
        arrived.set(m.title, m.at);
        waiting.get(m.title)?.(m.at);
        waiting.delete(m.title);
      }
    });
  });
  return {
    url,
    arrived,
    arrival: (title) => {
      const known = arrived.get(title);
      return known !== undefined ? Promise.resolve(known) : new Promise((r) => waiting.set(title, r));
    },
    close: () => new Promise((r) => {
      child.once('exit', () => r());
      child.kill();
    }),
  };
}

if (process.argv.includes('--serve')) {
  const plan = JSON.stringify({ summary: 'Ein Schritt', steps: [{ summary: 'Aufgabe anlegen', toolName: 'create_task', params: { title: 'Nächster Schritt' }, rationale: 'Damit es vorangeht' }] });
  const answer = JSON.stringify({ choices: [{ message: { role: 'assistant', content: '```json\n' + plan + '\n```' } }], usage: { total_tokens: 100 } });
  const report = process.argv.includes('--quiet') ? null : (title: string, at: number) => process.send!({ title, at });
  const server = createServer((req, res) => {
    const at = nowMs();
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(answer);
      const m = /Mission: <<<NUTZERDATEN\\n([^\\]*?)\\n/.exec(Buffer.concat(chunks).toString('utf8'));
      // bursts are timed by their runs' ends: no message per request into the measured process
      if (m && report && !m[1]!.startsWith('burst-')) report(m[1]!, at);
    });
  });
  server.listen(0, '127.0.0.1', () => process.send!({ url: `http://127.0.0.1:${(server.address() as { port: number }).port}` }));
  process.on('disconnect', () => process.exit(0));
}
