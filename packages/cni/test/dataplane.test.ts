// The kernel Dataplane's pure parts: the host veth's IPv6 gateway address and its sysctls.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { eui64LinkLocal, hostVethSysctls } from '../src/dataplane/kernel.js';

describe('eui64LinkLocal', () => {
  it('gives_calicos_gateway_for_the_ee_mac', () => {
    assert.equal(eui64LinkLocal('ee:ee:ee:ee:ee:ee'), 'fe80::ecee:eeff:feee:eeee');
  });

  it('flips_the_universal_local_bit_and_drops_leading_zeros_as_the_kernel_prints', () => {
    assert.equal(eui64LinkLocal('02:42:ac:11:00:02'), 'fe80::42:acff:fe11:2');
    assert.equal(eui64LinkLocal('00:00:00:00:00:00'), 'fe80::200:ff:fe00:0');
  });

  it('refuses_what_is_not_a_mac', () => {
    assert.throws(() => eui64LinkLocal('ee:ee:ee:ee:ee'), TypeError);
    assert.throws(() => eui64LinkLocal('ee:ee:ee:ee:ee:zz'), TypeError);
  });
});

describe('hostVethSysctls', () => {
  it('sets_calicos_per_family_sysctls_on_the_host_veth', () => {
    const show = (f: (4 | 6)[]) => hostVethSysctls('cali0', new Set(f)).map((s) => `${s.path}=${s.value}`);
    assert.deepEqual(show([4]), [
      'net/ipv4/conf/cali0/proxy_arp=1',
      'net/ipv4/conf/cali0/forwarding=1',
      'net/ipv4/conf/cali0/route_localnet=1',
      'net/ipv4/neigh/cali0/proxy_delay=0',
    ]);
    assert.deepEqual(show([6]), [
      'net/ipv6/conf/cali0/accept_ra=0',
      'net/ipv6/conf/cali0/forwarding=1',
      'net/ipv6/conf/cali0/proxy_ndp=1',
    ]);
    assert.equal(show([4, 6]).length, 7);
  });
});
