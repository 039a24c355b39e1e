// felix-lite's kernel tests make their namespaces as tfl-<tag>-<pid>-<n> (or another prefix
// passed to TestNetns.create); the helpers are shared, in @tabby/netlink/testing. Tests that
// also need nft (NAT, pods that drop neighbour solicitations) ask needNft.
import { execFileSync } from 'node:child_process';
import type { TestContext } from 'node:test';
import { kernelUnavailable, needKernel, setNetnsPrefix } from '@tabby/netlink/testing';

setNetnsPrefix('tfl');
export * from '@tabby/netlink/testing';

let nftProbe: string | undefined | null = null;
/** Why nft cannot run here, or undefined when it can. */
export function nftUnavailable(): string | undefined {
  if (nftProbe !== null) return nftProbe;
  nftProbe = kernelUnavailable();
  if (nftProbe === undefined)
    try {
      execFileSync('nft', ['--version'], { stdio: 'pipe' });
    } catch (e) {
      nftProbe = `nft cannot run (install the "nftables" package): ${(e as Error).message.split('\n')[0]}`;
    }
  return nftProbe;
}

/** True when the test may go on; otherwise skips it with the reason (or throws under CI=true). */
export function needNft(t: TestContext): boolean {
  if (!needKernel(t)) return false;
  const why = nftUnavailable();
  if (why === undefined) return true;
  if (process.env['CI'] === 'true') throw new Error(`kernel test cannot run under CI: ${why}`);
  console.log(`# skipping: ${why}`);
  t.skip(why);
  return false;
}
