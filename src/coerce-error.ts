// Whatever was thrown, as an Error: JavaScript lets code throw anything (a
// string, an object, undefined), and a log line or a failure reason built
// from `(error as Error).message` of such a value says nothing. One place
// turns it into an Error whose message says what was thrown.
//
// It must never throw itself (it runs in catch blocks and error paths), and
// it does not add anything to a message: what an Error says is what it
// said, so keys and tokens stay out of logs exactly as far as the thrower
// kept them out.

/** `error` itself when it is an Error, else an Error whose message is its string form. */
export function coerceError(error: unknown): Error {
  if (error instanceof Error) return error;
  let text: string;
  try {
    text = typeof error === 'string' ? error : JSON.stringify(error) ?? String(error);
  } catch {
    text = Object.prototype.toString.call(error);
  }
  return new Error(`non-error thrown: ${text}`.slice(0, 1_000));
}
