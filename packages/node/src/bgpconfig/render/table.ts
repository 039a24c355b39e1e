// A BgpConfig as human tables: `tabby render` without -o.
import type { BgpConfig, FamilyConfig, PeerConfig } from '../model.js';

/** Columns padded to their widest cell. */
export function table(header: readonly string[], rows: readonly (readonly string[])[]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (r: readonly string[]): string =>
    r
      .map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i]!)))
      .join('  ')
      .trimEnd();
  return [line(header), ...rows.map(line)].join('\n');
}

function options(p: PeerConfig): string {
  const o: string[] = [];
  if (p.sourceAddress !== undefined) o.push(`source ${p.sourceAddress}`);
  if (p.multihop !== undefined)
    o.push(p.multihop.ttlSecurity !== undefined ? `ttl-security ${p.multihop.ttlSecurity}` : 'multihop');
  if (p.rrClient !== undefined) o.push(`rr-client ${p.rrClient.clusterId}`);
  if (p.password !== undefined) o.push('password');
  if (p.gracefulRestartTime !== undefined) o.push(`restart ${p.gracefulRestartTime}s`);
  if (p.keepaliveTime !== undefined) o.push(`keepalive ${p.keepaliveTime}s`);
  if (p.allowLocalAs !== undefined) o.push(`allowas-in ${p.allowLocalAs}`);
  if (p.reachableBy !== undefined) o.push(`via ${p.reachableBy}`);
  if (p.importFilters.length > 0) o.push(`import ${p.importFilters.join(',')}`);
  if (p.exportFilters.length > 0) o.push(`export ${p.exportFilters.join(',')}`);
  return o.join(', ');
}

function family(f: FamilyConfig): string {
  const head = `IPv${f.family}`;
  if (f.nodeAddress === undefined) return `${head}: disabled (the node has no IPv${f.family} address)\n`;
  const out: string[] = [`${head} (node address ${f.nodeAddress}, subnet ${f.nodeNetwork ?? '?'})`];
  out.push(
    f.peers.length === 0
      ? '  no peers'
      : table(
          ['  PEER', 'TYPE', 'ADDRESS', 'PORT', 'AS', 'LOCAL AS', 'PASSIVE', 'NEXT HOP', 'OPTIONS'],
          f.peers.map((p) => [
            `  ${p.name}`,
            p.type,
            p.address,
            String(p.port ?? 179),
            String(p.asNumber),
            String(p.localAsNumber),
            p.passive ? 'yes' : 'no',
            p.nextHop,
            options(p),
          ]),
        ),
  );
  const ex = f.exports;
  out.push('  exports:');
  out.push(
    `    blocks: ${ex.blocks.map((b) => `${b.cidr} (${b.state ?? 'confirmed'})`).join(', ') || 'none'}`,
  );
  out.push(
    `    pools: ${ex.pools.map((p) => `${p.cidr}${p.disableBGPExport ? ' (not exported)' : ''}`).join(', ') || 'none'}`,
  );
  if (ex.serviceRoutes.length > 0) out.push(`    service routes: ${ex.serviceRoutes.join(', ')}`);
  if (ex.kernelRejects.length > 0) out.push(`    not programmed from peers: ${ex.kernelRejects.join(', ')}`);
  for (const p of ex.prefixAdvertisements) out.push(`    communities ${p.cidr}: ${p.communities.join(' ')}`);
  for (const fl of f.filters)
    out.push(
      `  filter ${fl.filter} ${fl.direction}: ${fl.rules.length} rule${fl.rules.length === 1 ? '' : 's'}`,
    );
  for (const s of f.skipped) out.push(`  skipped ${s.key}: ${s.reason}`);
  return `${out.join('\n')}\n`;
}

export function renderTable(cfg: BgpConfig): string {
  const head = [
    `node ${cfg.node}`,
    `router ID ${cfg.routerId || '(none)'}`,
    `AS ${cfg.asNumber}`,
    `port ${cfg.listenPort ?? 179}`,
    cfg.routeReflectorClusterId !== undefined
      ? `route reflector, cluster ID ${cfg.routeReflectorClusterId}`
      : `mesh ${cfg.meshEnabled ? 'on' : 'off'}`,
  ].join('   ');
  const warn = cfg.warnings.map((w) => `warning: ${w}\n`).join('');
  return `${head}\n\n${family(cfg.ipv4)}\n${family(cfg.ipv6)}${warn}`;
}
