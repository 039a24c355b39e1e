// Network namespaces made by the kernel tests (named tip-<tag>-<pid>-<n>), always removed.
// The tests skip with a printed reason when this process cannot make them (not root, no
// netns support); with CI=true in the environment they fail instead. IPIP tests also need
// the kernel's ipip module, which this build host lacks: they skip with the reason even
// under CI (they run in the qemu lab, ../shared/lab), and fail instead where the module must
// be there: inside the lab guest (LAB_GUEST=1) or with TABBY_REQUIRE_IPIP=1.
import type { TestContext } from 'node:test';
import { kernelUnavailable, needKernel, setNetnsPrefix, TestNetns } from '@tabby/netlink/testing';

setNetnsPrefix('tip');
export * from '@tabby/netlink/testing';

let ipipProbe: string | undefined | null = null;

/** Why IPIP devices cannot be made here (no ipip module), or undefined when they can. */
export function ipipUnavailable(): string | undefined {
  if (ipipProbe !== null) return ipipProbe;
  ipipProbe = kernelUnavailable();
  if (ipipProbe !== undefined) return ipipProbe;
  const ns = TestNetns.create('ipipprobe');
  try {
    // Explicit endpoints: with the module loaded, an any-to-any device collides with the
    // fallback tunl0 (EEXIST) and would look like a missing module.
    ns.ip('link', 'add', 'tipprobe0', 'type', 'ipip', 'remote', '192.0.2.1', 'local', '192.0.2.2');
  } catch (e) {
    const msg = (e as { stderr?: string }).stderr?.trim() ?? (e as Error).message.split('\n')[0];
    ipipProbe = `this kernel cannot make ipip devices (${msg}); the IPIP tests run in the qemu lab (../shared/lab)`;
  } finally {
    ns.destroy();
  }
  return ipipProbe;
}

/** As needKernel, for tests that need ipip devices too. */
export function needIpip(t: TestContext): boolean {
  if (!needKernel(t)) return false;
  const why = ipipUnavailable();
  if (why === undefined) return true;
  if (process.env['LAB_GUEST'] === '1' || process.env['TABBY_REQUIRE_IPIP'] === '1')
    throw new Error(`IPIP test cannot run where ipip is required: ${why}`);
  console.log(`# skipping: ${why}`);
  t.skip(why);
  return false;
}
