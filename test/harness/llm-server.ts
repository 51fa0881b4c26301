// A small OpenAI-compatible server for tests: real HTTP on 127.0.0.1, a
// script decides each answer. Records every request it received.

import { createServer, type Server } from 'node:http';

export interface LlmRequest {
  headers: Record<string, string | string[] | undefined>;
  body: {
    model: string;
    temperature: number;
    messages: { role: string; content: string; tool_calls?: unknown[]; tool_call_id?: string }[];
    tools?: { type: 'function'; function: { name: string; description: string; parameters: { properties: Record<string, unknown>; required: string[] } } }[];
    tool_choice?: string;
  };
}

export interface LlmReply {
  status?: number;
  content?: string;
  raw?: string;
  headers?: Record<string, string>;
  delayMs?: number;
  /** OpenAI usage block to report (absent = none, the runner then estimates) */
  usage?: { total_tokens: unknown; prompt_tokens?: number; completion_tokens?: number };
}

export type LlmScript = (req: LlmRequest, n: number) => LlmReply | Promise<LlmReply>;

export const planAnswer = (summary = 'Plan für heute', steps: unknown[] = [{ summary: 'Aufgabe anlegen', toolName: 'create_task', params: { title: 'Einkaufen' }, rationale: 'Der Kühlschrank ist leer' }]) =>
  '```json\n' + JSON.stringify({ summary, steps }) + '\n```';

export interface LlmServer {
  url: string;
  requests: LlmRequest[];
  setScript(s: LlmScript): void;
  close(): Promise<void>;
}

export async function startLlmServer(script: LlmScript = () => ({ content: planAnswer() })): Promise<LlmServer> {
  let current = script;
  const requests: LlmRequest[] = [];
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', async () => {
      const body = JSON.parse(Buffer.concat(chunks).toString('utf8'));
      const r: LlmRequest = { headers: req.headers, body };
      requests.push(r);
      const reply = await current(r, requests.length);
      if (reply.delayMs) await new Promise((resolve) => setTimeout(resolve, reply.delayMs));
      const payload = reply.raw ?? JSON.stringify({ choices: [{ message: { role: 'assistant', content: reply.content ?? '' } }], ...(reply.usage ? { usage: reply.usage } : {}) });
      res.writeHead(reply.status ?? 200, { 'content-type': 'application/json', ...reply.headers });
      res.end(payload);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const addr = server.address();
  const port = typeof addr === 'object' && addr ? addr.port : 0;
  return {
    url: `http://127.0.0.1:${port}`,
    requests,
    setScript: (s) => {
      current = s;
    },
    close: () =>
      new Promise((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/**
 * Holds the answer to every request `match` selects until `release()`
 * (others get a plan at once): forces a run to stay in flight while a test
 * acts. `asked` resolves on the first held request.
 */
export function holdAnswers(llm: LlmServer, match: (req: LlmRequest) => boolean, summary = 'gehalten'): { asked: Promise<void>; release: () => void } {
  let release!: () => void;
  const released = new Promise<void>((r) => (release = r));
  let ask!: () => void;
  const asked = new Promise<void>((r) => (ask = r));
  llm.setScript(async (req) => {
    if (!match(req)) return { content: planAnswer() };
    ask();
    await released;
    return { content: planAnswer(summary) };
  });
  return { asked, release };
}

/** True when the request's prompt is about the mission with this title (the prompt shows it on its own line). */
export const promptMentions = (req: LlmRequest, title: string) => req.body.messages.some((m) => (m.content ?? '').includes(title));

/** An answer with native tool calls (OpenAI format), for the tool-call mode. */
export function toolCallsAnswer(calls: { name: string; args: unknown; id?: string }[], content: string | null = null, usage?: { prompt_tokens: number; completion_tokens: number }): LlmReply {
  return {
    raw: JSON.stringify({
      choices: [{
        message: { role: 'assistant', content, tool_calls: calls.map((c, i) => ({ id: c.id ?? `call_${i}`, type: 'function', function: { name: c.name, arguments: typeof c.args === 'string' ? c.args : JSON.stringify(c.args) } })) },
        finish_reason: calls.length ? 'tool_calls' : 'stop',
      }],
      ...(usage ? { usage: { ...usage, total_tokens: usage.prompt_tokens + usage.completion_tokens } } : {}),
    }),
  };
}
