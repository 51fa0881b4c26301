// The shape of a tool catalog: what the webapp's executor of one
// generation accepts (CONTRACT.md sections 6 and 11, TOOLS.md). The prompt,
// the step validator and (later) the native tool specs all read it.

export type WebappGeneration = 'v0.4' | 'head';

export type ParamType = 'string' | 'number' | 'boolean' | 'array' | 'object';

/** A string the validator parses: YYYY-MM-DD, an ISO 8601 date-time, or either. */
export type ParamFormat = 'date' | 'date-time' | 'date-or-date-time';

export interface CatalogParam {
  readonly name: string;
  readonly type: ParamType;
  readonly required: boolean;
  readonly enum?: readonly string[];
  readonly format?: ParamFormat;
  /** ours, in German: what the parameter is (param-descriptions.ts); shown in the prompt and the tool specs */
  readonly description?: string;
}

export interface CatalogTool {
  readonly name: string;
  readonly module: string;
  /** ours, in German: what the prompt says the tool does */
  readonly description: string;
  readonly params: readonly CatalogParam[];
}
