// A mana-search stand-in (CONTRACT.md section 15's shapes) for tests: POST
// /api/v1/search answers per query from a script, with the faults a real
// one shows: 401, 500, 502, a timeout (never answers), malformed JSON, a
// megabyte body. Records every request.

import { createServer, type Server, type ServerResponse } from 'node:http';

export type SearchFault = '401' | '500' | '502' | 'timeout' | 'malformed' | 'huge';
export type SearchReply = { hits: { url: string; title?: string; snippet?: string; publishedDate?: string }[] } | { fault: SearchFault };

export interface SearchServer {
  url: string;
  requests: { query: string; options: Record<string, unknown> }[];
  close(): Promise<void>;
}

export async function startSearchServer(script: (query: string) => SearchReply): Promise<SearchServer> {
  const requests: SearchServer['requests'] = [];
  const hanging: ServerResponse[] = [];
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = JSON.parse(Buffer.concat(chunks).toString('utf8')) as { query: string; options?: Record<string, unknown> };
      requests.push({ query: body.query, options: body.options ?? {} });
      const reply = script(body.query);
      if ('fault' in reply) {
        const err = (status: number) => {
          res.writeHead(status, { 'content-type': 'application/json' });
          res.end(JSON.stringify({ success: false, error: { statusCode: status, message: 'stand-in fault', timestamp: new Date().toISOString() } }));
        };
        if (reply.fault === 'timeout') return void hanging.push(res);
        if (reply.fault === 'malformed') {
          res.writeHead(200, { 'content-type': 'application/json' });
          return void res.end('{"results": [ kein json');
        }
        if (reply.fault === 'huge') {
          res.writeHead(200, { 'content-type': 'application/json' });
          return void res.end(JSON.stringify({ results: [{ url: 'https://example.org/a', title: 'A', snippet: 'x'.repeat(2_000_000) }] }));
        }
        return err(Number(reply.fault));
      }
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({
        results: reply.hits.map((h, i) => ({ engine: 'stand-in', score: 1 - i / 100, category: 'news', title: '', snippet: '', ...h })),
        meta: { query: body.query, totalResults: reply.hits.length, engines: ['stand-in'], duration: 1, cached: false, cacheKey: 'k' },
      }));
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const a = server.address();
  return {
    url: `http://127.0.0.1:${typeof a === 'object' && a ? a.port : 0}`,
    requests,
    close: async () => {
      for (const r of hanging) r.destroy();
      server.closeAllConnections();
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
}
