// Waiting on conditions that no event announces (a backend waiting on a
// lock, a row a daemon writes): checks every 10 ms, fails after a timeout
// that says what never happened.

export async function eventually(check: () => Promise<boolean> | boolean, what: string, timeoutMs = 20_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (Date.now() < end) {
    if (await check()) return;
    await new Promise((r) => setTimeout(r, 10));
  }
  throw new Error(`not within ${timeoutMs} ms: ${what}`);
}
