// undici, imported when the first request needs it instead of when the
// process starts. Evaluating undici costs about 0.1 s on a 2-core VM, and
// at a start that is time before the schedule load begins (issue 30: 1M
// missions scheduled in 3 s); nothing sends a request before the load.
// Every module of ours that sends HTTP goes through here; none imports
// undici's values at its top (types are free).

type Undici = typeof import('undici');

let loading: Promise<Undici> | null = null;

/** undici, loaded once; every caller shares the one import. */
export function undici(): Promise<Undici> {
  loading ??= import('undici');
  return loading;
}
