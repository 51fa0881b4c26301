// The HTTP edge: /health, /metrics, the operator endpoints under
// /internal/* (service key) and the user's audit API (user JWT, checked by
// its handler). No framework: a route table, JSON errors, 404/405, a body cap.
// Never logs a header value.

import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { Metrics } from '../metrics/metrics.js';
import type { Logger } from '../log.js';
import { serviceKeyMatches } from './service-key.js';
import { coerceError } from '../coerce-error.js';

export const MAX_BODY_BYTES = 64 * 1024;

export class HttpError extends Error {
  constructor(readonly status: number, readonly code: string, message: string) {
    super(message);
  }
}

export interface RequestContext {
  req: IncomingMessage;
  url: URL;
  params: Record<string, string>;
  body: unknown;
}

export interface RouteResult {
  status: number;
  body: unknown;
  contentType?: string;
}

export interface Route {
  method: 'GET' | 'POST';
  /** e.g. /internal/missions/:userId */
  pattern: string;
  /** metric label: the pattern, never the raw path */
  auth: 'none' | 'service-key';
  handle(ctx: RequestContext): Promise<RouteResult> | RouteResult;
}

function match(pattern: string, path: string): Record<string, string> | null {
  const p = pattern.split('/');
  const s = path.split('/');
  if (p.length !== s.length) return null;
  const params: Record<string, string> = {};
  for (let i = 0; i < p.length; i++) {
    if (p[i]!.startsWith(':')) {
      if (!s[i]) return null;
      try {
        params[p[i]!.slice(1)] = decodeURIComponent(s[i]!);
      } catch {
        return null;
      }
    } else if (p[i] !== s[i]) return null;
  }
  return params;
}

async function readBody(req: IncomingMessage): Promise<unknown> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    size += (chunk as Buffer).length;
    if (size > MAX_BODY_BYTES) throw new HttpError(413, 'body-too-large', `request bodies are limited to ${MAX_BODY_BYTES} bytes`);
    chunks.push(chunk as Buffer);
  }
  if (size === 0) return undefined;
  try {
    return JSON.parse(Buffer.concat(chunks).toString('utf8'));
  } catch {
    throw new HttpError(400, 'invalid-json', 'the request body is not JSON');
  }
}

export function createHttpServer(opts: { routes: Route[]; metrics: Metrics; log: Logger; serviceKey: string | undefined }): Server {
  const send = (res: ServerResponse, r: RouteResult) => {
    const body = r.contentType ? String(r.body) : JSON.stringify(r.body);
    res.writeHead(r.status, { 'content-type': r.contentType ?? 'application/json; charset=utf-8', 'cache-control': 'no-store' });
    res.end(body);
  };
  return createServer((req, res) => {
    const started = performance.now();
    const method = req.method ?? 'GET';
    let label = 'unmatched';
    void (async () => {
      let result: RouteResult;
      try {
        const url = new URL(req.url ?? '/', 'http://localhost');
        const candidates = opts.routes.map((r) => ({ r, params: match(r.pattern, url.pathname) })).filter((c) => c.params !== null);
        if (candidates.length === 0) throw new HttpError(404, 'not-found', `no route for ${url.pathname}`);
        const hit = candidates.find((c) => c.r.method === method);
        if (!hit) {
          label = candidates[0]!.r.pattern;
          res.setHeader('allow', [...new Set(candidates.map((c) => c.r.method))].join(', '));
          throw new HttpError(405, 'method-not-allowed', `${method} is not allowed here`);
        }
        label = hit.r.pattern;
        if (hit.r.auth === 'service-key') {
          if (!opts.serviceKey) throw new HttpError(503, 'not-configured', 'MANA_SERVICE_KEY is not set; internal endpoints are off');
          if (!serviceKeyMatches(req.headers['x-service-key'], opts.serviceKey)) throw new HttpError(401, 'unauthorized', 'missing or wrong X-Service-Key');
        }
        const body = method === 'POST' ? await readBody(req) : undefined;
        result = await hit.r.handle({ req, url, params: hit.params!, body });
      } catch (error) {
        if (error instanceof HttpError) result = { status: error.status, body: { error: error.code, message: error.message } };
        else {
          opts.log.error({ route: label, err: coerceError(error).message }, 'request failed');
          result = { status: 500, body: { error: 'internal', message: 'internal error' } };
        }
      }
      send(res, result);
      const status = String(result.status);
      opts.metrics.httpRequests.inc({ method, path: label, status });
      opts.metrics.httpRequestDuration.observe({ method, path: label, status }, (performance.now() - started) / 1000);
    })();
  });
}
