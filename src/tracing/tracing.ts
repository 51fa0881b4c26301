// OpenTelemetry tracing for runs and reschedules. Exported over OTLP/HTTP
// when OTEL_EXPORTER_OTLP_ENDPOINT (or ..._TRACES_ENDPOINT) is set; the
// SDK and the exporter are imported only then, so without an endpoint no
// SDK code is loaded, no batch timer runs and every span is the API's
// no-op (a few property reads per run).
//
// Spans carry ids, times and outcomes only: never a prompt, an answer, a
// title, a user id (a hash of it instead) or key material. No global
// provider or context manager is installed: parents are passed explicitly,
// so nothing else in the process is traced by accident.

import { createHash } from 'node:crypto';
import { ROOT_CONTEXT, SpanStatusCode, trace, type Attributes, type Context, type Span, type Tracer } from '@opentelemetry/api';
import type { Logger } from '../log.js';
import { coerceError } from '../coerce-error.js';

export interface TracingOptions {
  /** Base OTLP endpoint (…/v1/traces is appended), or null. */
  endpoint: string | null;
  /** Full traces URL (OTEL_EXPORTER_OTLP_TRACES_ENDPOINT), wins over `endpoint`. */
  tracesEndpoint: string | null;
  serviceName: string;
  /** OTEL_BSP_SCHEDULE_DELAY: how long spans wait for a batch. */
  scheduleDelayMs: number;
  log: Logger;
}

export interface Tracing {
  readonly enabled: boolean;
  readonly tracer: Tracer;
  /** Adds W3C trace context headers (`traceparent`) for `span` to an outgoing request's headers. */
  inject(span: Span, headers: Record<string, string>): void;
  /** Exports what is pending and stops the exporter. */
  shutdown(): Promise<void>;
}

let sdkLoaded = false;
/** For tests: whether the OTel SDK was ever imported in this process. */
export const otelSdkLoaded = () => sdkLoaded;

const disabled: Tracing = { enabled: false, tracer: trace.getTracer('mana-ai'), inject: () => {}, shutdown: async () => {} };

export async function startTracing(opts: TracingOptions): Promise<Tracing> {
  const url = opts.tracesEndpoint ?? (opts.endpoint ? `${opts.endpoint.replace(/\/+$/, '')}/v1/traces` : null);
  if (!url) return disabled;
  const [{ BasicTracerProvider, BatchSpanProcessor }, { OTLPTraceExporter }, { resourceFromAttributes }, { W3CTraceContextPropagator }] = await Promise.all([
    import('@opentelemetry/sdk-trace-base'),
    import('@opentelemetry/exporter-trace-otlp-http'),
    import('@opentelemetry/resources'),
    import('@opentelemetry/core'),
  ]);
  const propagator = new W3CTraceContextPropagator();
  sdkLoaded = true;
  // headers (OTEL_EXPORTER_OTLP_HEADERS) and timeouts come from the standard variables
  const exporter = new OTLPTraceExporter({ url });
  const provider = new BasicTracerProvider({
    resource: resourceFromAttributes({ 'service.name': opts.serviceName }),
    spanProcessors: [new BatchSpanProcessor(exporter, { scheduledDelayMillis: opts.scheduleDelayMs })],
  });
  opts.log.info({ url }, 'tracing: exporting spans over OTLP/HTTP');
  return {
    enabled: true,
    tracer: provider.getTracer('mana-ai'),
    inject: (span, headers) => propagator.inject(within(span), headers, { set: (carrier, key, value) => (carrier[key] = value) }),
    shutdown: () => provider.shutdown().catch((error: unknown) => opts.log.warn({ err: coerceError(error).message }, 'tracing: last export failed')),
  };
}

/** A user id as it may appear on a span: the first 16 hex digits of its SHA-256. */
export function userIdHash(userId: string): string {
  return createHash('sha256').update(userId, 'utf8').digest('hex').slice(0, 16);
}

/** The context whose active span is `span` (parents are passed, not ambient). */
export const within = (span: Span): Context => trace.setSpan(ROOT_CONTEXT, span);

/** Runs `fn` inside a child span of `parent`; ends it, an error marks it failed. */
export async function inSpan<T>(tracer: Tracer, parent: Span, name: string, attributes: Attributes, fn: (span: Span) => Promise<T>): Promise<T> {
  const span = tracer.startSpan(name, { attributes }, within(parent));
  try {
    return await fn(span);
  } catch (error) {
    span.setStatus({ code: SpanStatusCode.ERROR, message: error instanceof Error ? error.name : 'error' });
    throw error;
  } finally {
    span.end();
  }
}
