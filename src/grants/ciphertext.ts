// What counts as ciphertext, everywhere (issue 27): any string value that
// starts `enc:<digits>:`, whatever the version. The webapp writes `enc:1:`
// today and `enc:2:` with record keys (CONTRACT.md section 14); a value of a
// version this build cannot open is still never prompt text, a span
// attribute, a log line or a metric label, and a decrypt of it is a
// `failed` audit row (reason `ciphertext-unsupported-version`). Pure.

const CIPHERTEXT = /^enc:[0-9]+:/;

export const isCiphertext = (value: unknown): value is string => typeof value === 'string' && CIPHERTEXT.test(value);
