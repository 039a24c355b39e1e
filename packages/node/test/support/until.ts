// Polls a condition until it holds, for the node package's tests. A probe that throws (a
// socket not there yet) means "not yet"; after `ms` the last error, if any, is in the message.
export async function until(
  f: () => boolean | Promise<boolean>,
  what: string,
  ms = 10_000,
  intervalMs = 25,
): Promise<void> {
  const t0 = Date.now();
  let why = '';
  for (;;) {
    let ok: boolean;
    try {
      ok = await f();
    } catch (e) {
      ok = false;
      why = `; last error: ${(e as Error).message.split('\n')[0]}`;
    }
    if (ok) return;
    if (Date.now() - t0 > ms) throw new Error(`timed out waiting for: ${what}${why}`);
    await new Promise((r) => setTimeout(r, intervalMs));
  }
}
