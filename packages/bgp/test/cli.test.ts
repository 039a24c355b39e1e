import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { EXIT_MALFORMED, EXIT_OK, EXIT_USAGE, run } from '../src/cli/main.js';

async function cli(argv: string[], stdin = ''): Promise<{ code: number; out: string; err: string }> {
  let out = '';
  let err = '';
  const code = await run({
    argv,
    readStdin: () => Promise.resolve(stdin),
    stdout: (s) => (out += s),
    stderr: (s) => (err += s),
  });
  return { code, out, err };
}

const KEEPALIVE = 'ffffffffffffffffffffffffffffffff001304';
// UPDATE: ORIGIN igp, AS_PATH [65001], NEXT_HOP 192.0.2.1, COMMUNITIES 65000:100, NLRI 10.0.0.0/24.
const UPDATE =
  'ffffffffffffffffffffffffffffffff' +
  '0036' +
  '02' +
  '0000' +
  '001b' +
  '40010100' +
  '4002060201' +
  '0000fde9' +
  '400304c0000201' +
  'c00804fde80064' +
  '180a0000';

describe('bgp-ts decode', () => {
  it('prints one JSON object per message, with or without markers, spaces and newlines allowed', async () => {
    const noMarker = UPDATE.slice(32);
    const r = await cli(['decode'], `${KEEPALIVE}\n${noMarker.slice(0, 20)} ${noMarker.slice(20)}\n`);
    assert.equal(r.code, EXIT_OK, r.err);
    const lines = r.out
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as Record<string, unknown>);
    assert.deepEqual(lines[0], { type: 'keepalive' });
    assert.deepEqual(lines[1], {
      type: 'update',
      withdrawnRoutes: [],
      pathAttributes: {
        origin: 'igp',
        asPath: [{ type: 'sequence', asns: [65001] }],
        nextHop: '192.0.2.1',
        communities: ['65000:100'],
      },
      nlri: ['10.0.0.0/24'],
    });
  });

  it('reads hex from arguments', async () => {
    const r = await cli(['decode', KEEPALIVE.slice(0, 10), KEEPALIVE.slice(10)]);
    assert.equal(r.out, '{"type":"keepalive"}\n');
  });

  it('prints the NOTIFICATION a malformed message causes and exits 1', async () => {
    // ORIGIN value 9: treat-as-withdraw (RFC 7606 §7.1), still decoded.
    const bad = UPDATE.replace('40010100', '40010109');
    const r = await cli(['decode', bad]);
    assert.equal(r.code, EXIT_MALFORMED);
    const j = JSON.parse(r.out) as {
      malformed: {
        action: string;
        errors: { code: number; subcode: number; subcodeName: string; data: string }[];
      };
    };
    assert.equal(j.malformed.action, 'treat-as-withdraw');
    assert.deepEqual(
      { ...j.malformed.errors[0], reason: undefined },
      {
        code: 3,
        subcode: 6,
        codeName: 'UPDATE Message Error',
        subcodeName: 'Invalid ORIGIN Attribute',
        data: '40010109',
        action: 'treat-as-withdraw',
        reason: undefined,
      },
    );
    const header = await cli(['decode', 'ffffffffffffffffffffffffffffffff001309']);
    assert.equal(header.code, EXIT_MALFORMED);
    assert.deepEqual(JSON.parse(header.out), {
      error: {
        code: 1,
        subcode: 3,
        codeName: 'Message Header Error',
        subcodeName: 'Bad Message Type',
        data: '09',
        action: 'session-reset',
        reason: 'unknown message type 9',
      },
    });
  });

  it('honours the session context options', async () => {
    // A 2-octet AS_PATH: 65001 as two bytes.
    const as2 =
      'ffffffffffffffffffffffffffffffff' +
      '002b' +
      '02' +
      '0000' +
      '0012' +
      '40010100' +
      '400204020101f4' +
      '400304c0000201' +
      '080a';
    const r = await cli(['decode', '--as2', as2]);
    assert.equal(r.code, EXIT_OK, r.out + r.err);
    assert.match(r.out, /"asns":\[500\]/);
    const ap = await cli([
      'decode',
      '--add-path=ipv4-unicast',
      'ffffffffffffffffffffffffffffffff001f0200080000000718 0a0000 0000'.replace(/\s/g, ''),
    ]);
    assert.equal(ap.code, EXIT_OK, ap.out + ap.err);
    assert.match(ap.out, /\{"prefix":"10.0.0.0\/24","pathId":7\}/);
  });

  it('reads raw bytes with --raw and reports a cut-off tail', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'bgp-ts-'));
    const file = join(dir, 'stream.bin');
    writeFileSync(file, Buffer.from(KEEPALIVE + UPDATE + KEEPALIVE.slice(0, 20), 'hex'));
    const r = await cli(['decode', '--raw', file]);
    assert.equal(r.code, EXIT_MALFORMED);
    assert.equal(r.out.trim().split('\n').length, 2);
    assert.match(r.err, /10 bytes at the end/);
  });

  it('gives usage errors exit code 2', async () => {
    assert.equal((await cli(['decode', 'zz'])).code, EXIT_USAGE);
    assert.equal((await cli(['decode', '--nope'])).code, EXIT_USAGE);
    assert.equal((await cli(['frobnicate'])).code, EXIT_USAGE);
    assert.equal((await cli([])).code, EXIT_USAGE);
    assert.equal((await cli(['help'])).code, EXIT_OK);
  });
});

describe('bgp-ts encode', () => {
  it('reverses decode', async () => {
    const d = await cli(['decode', KEEPALIVE + UPDATE]);
    const e = await cli(['encode'], d.out);
    assert.equal(e.code, EXIT_OK, e.err);
    assert.equal(e.out, `${KEEPALIVE}\n${UPDATE}\n`);
    const arr = await cli(['encode', `[${d.out.trim().split('\n').join(',')}]`]);
    assert.equal(arr.out, e.out);
  });

  it('names the bad field and exits 1', async () => {
    const r = await cli(['encode', '{"type":"update","nlri":["10.0.0.0/33"]}']);
    assert.equal(r.code, EXIT_MALFORMED);
    assert.match(r.err, /\$\.nlri\[0\]/);
  });
});

describe('bgp-ts demo', () => {
  it('runs a reflector and two nodes, shows their routes, and drains one', async () => {
    const r = await cli(['demo']);
    assert.equal(r.code, EXIT_OK, r.err);
    assert.match(r.out, /All three hold all 5 pod blocks/);
    assert.match(r.out, /^node-a\s+127\.0\.0\.42\s+64512\s+established\s+\S+\s+3\s+3\s+2$/m);
    assert.match(r.out, /"originatorId": "10\.0\.0\.43"/);
    assert.match(r.out, /"clusterList": \[\s*"10\.0\.0\.41"\s*\]/);
    assert.match(r.out, /node-a now holds only its own 3 blocks/);
    assert.match(
      r.out,
      /"notification":"Cease \/ Administrative Shutdown \(6\/2\): \\"node-b drained for maintenance\\""/,
    );
  });

  it('--codec encodes and decodes a sample session', async () => {
    const r = await cli(['demo', '--codec']);
    assert.equal(r.code, EXIT_OK);
    assert.match(r.out, /"shutdownCommunication":"maintenance: node drained"/);
    assert.match(r.out, /"endOfRib":\{"afi":1,"safi":1\}/);
  });
});
