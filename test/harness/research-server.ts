// A mana-research stand-in (CONTRACT.md section 15's shapes) for tests:
// POST /api/v1/internal/research/async submits, GET …/{taskId} answers
// the task's status. Each query's script says what happens: complete when
// the test releases it (with citations and a megabyte providerRaw), never
// finish, or refuse the submit (500: no credits; 502). Records every
// submit and its headers; another user's task is a 404.

import { createServer, type Server } from 'node:http';

export type TaskScript = 'held' | 'never' | 'credits' | '502';

export interface ResearchServer {
  url: string;
  submits: { query: string; userId: string; serviceKey: string | undefined; provider: string }[];
  polls: number;
  /** the task of `query` completes at its next poll */
  complete(query: string): void;
  close(): Promise<void>;
}

export async function startResearchServer(script: (query: string) => TaskScript): Promise<ResearchServer> {
  const submits: ResearchServer['submits'] = [];
  const tasks = new Map<string, { query: string; userId: string; done: boolean }>();
  const released = new Set<string>();
  let polls = 0;
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const userId = String(req.headers['x-user-id'] ?? '');
      const send = (status: number, body: unknown) => {
        res.writeHead(status, { 'content-type': 'application/json' });
        res.end(JSON.stringify(body));
      };
      if (req.method === 'POST' && req.url === '/api/v1/internal/research/async') {
        const body = JSON.parse(Buffer.concat(chunks).toString('utf8')) as { query: string; provider: string };
        submits.push({ query: body.query, userId, serviceKey: req.headers['x-service-key'] as string | undefined, provider: body.provider });
        const s = script(body.query);
        if (s === 'credits') return send(500, { statusCode: 500, message: 'insufficient credits' });
        if (s === '502') return send(502, { statusCode: 502, message: 'provider error' });
        const taskId = `task-${submits.length}`;
        tasks.set(taskId, { query: body.query, userId, done: false });
        return send(200, { taskId, status: 'queued', providerId: body.provider, costCredits: 300 });
      }
      const m = /^\/api\/v1\/internal\/research\/async\/([^/]+)$/.exec(req.url ?? '');
      if (req.method === 'GET' && m) {
        polls++;
        const t = tasks.get(decodeURIComponent(m[1]!));
        if (!t || t.userId !== userId) return send(404, { statusCode: 404, message: 'unknown task' });
        const base = { taskId: m[1], query: t.query, providerId: 'gemini-deep-research', costCredits: 300, createdAt: new Date().toISOString(), updatedAt: new Date().toISOString() };
        if (script(t.query) === 'held' && released.has(t.query)) {
          return send(200, {
            ...base, status: 'completed',
            result: { answer: { query: t.query, answer: `Antwort der Tiefenrecherche zu ${t.query}.`, citations: [
              { url: 'https://quelle.example/1', title: 'Quelle 1', snippet: 'Erste Quelle' },
              { url: 'javascript:alert(1)', title: 'keine' },
              { url: 'https://quelle.example/2', title: 'Quelle 2' },
            ], providerRaw: { blob: 'x'.repeat(3_000_000) } } },
          });
        }
        return send(200, { ...base, status: 'running' });
      }
      send(404, { statusCode: 404, message: 'no such route' });
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const a = server.address();
  return {
    url: `http://127.0.0.1:${typeof a === 'object' && a ? a.port : 0}`,
    submits,
    get polls() {
      return polls;
    },
    complete: (query) => void released.add(query),
    close: async () => {
      server.closeAllConnections();
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
}
