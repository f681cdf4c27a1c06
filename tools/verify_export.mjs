#!/usr/bin/env node
// Checks an export of backline's event log (`backline audit export --out FILE`)
// on its own: no backline code, only Node's standard library, so an auditor
// can read every line of it and port it to any language.
//
//   node tools/verify_export.mjs FILE
//
// It recomputes every event's hash with the documented recipe
//
//   hash = sha256( for each of prev_hash, position, stream, seq, type, time,
//                  actor, payload: "<byte length>:<bytes>" )   (lowercase hex)
//
// and checks that each event's prev_hash is the hash of the event before it
// (the header's prev_hash for the first), that positions follow each other,
// that each stream's seqs do, and that the footer names the last event as
// the head. It prints the events, the head and "verified", or the first bad
// position and what is wrong, like `backline audit verify`.
// Exit codes: 0 verified, 1 tampered or corrupt, 2 not readable as an export.

import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { createInterface } from 'node:readline';

const FIELDS = ['position', 'stream', 'seq', 'type', 'time', 'actor', 'payload', 'prev_hash', 'hash'];
const HEX64 = /^[0-9a-f]{64}$/;

function eventHash(e) {
  const h = createHash('sha256');
  for (const field of [e.prev_hash, String(e.position), e.stream, String(e.seq), e.type, e.time, e.actor, e.payload]) {
    const bytes = Buffer.from(field, 'utf8');
    h.update(`${bytes.length}:`);
    h.update(bytes);
  }
  return h.digest('hex');
}

function isCount(v) {
  return Number.isSafeInteger(v) && v >= 1;
}

class Bad extends Error {
  constructor(position, what) {
    super(what);
    this.position = position;
  }
}

async function check(file) {
  const lines = createInterface({ input: createReadStream(file), crlfDelay: Infinity });
  let header = null;
  let footer = null;
  let expected = 0; // the next position
  let prevHash = '';
  let lastHash = '';
  let events = 0;
  const lastSeq = new Map(); // stream -> last seq seen in this export
  let lineNo = 0;
  for await (const line of lines) {
    lineNo += 1;
    if (footer !== null) throw new Bad(0, `line ${lineNo}: text after the footer`);
    let v;
    try {
      v = JSON.parse(line);
    } catch (err) {
      if (header === null) throw Object.assign(new Error(`line 1 is not JSON: ${err.message}`), { unreadable: true });
      throw new Bad(expected, `line ${lineNo} is not JSON (${err.message})`);
    }
    if (header === null) {
      if (v === null || v.format !== 'backline-audit-export' || v.version !== 1 || !isCount(v.from_position)
          || typeof v.prev_hash !== 'string') {
        throw Object.assign(new Error('the first line is not a backline audit export header'), { unreadable: true });
      }
      header = v;
      expected = v.from_position;
      prevHash = v.prev_hash;
      if (expected === 1 && prevHash !== '') throw new Bad(1, 'an export from position 1 must start with an empty prev_hash');
      continue;
    }
    if (v !== null && typeof v === 'object' && 'head' in v) {
      footer = v;
      continue;
    }
    // An event.
    if (v === null || typeof v !== 'object' || Array.isArray(v)) throw new Bad(expected, `line ${lineNo} is not an event`);
    for (const k of Object.keys(v)) if (!FIELDS.includes(k)) throw new Bad(expected, `line ${lineNo}: unexpected field "${k}"`);
    for (const k of FIELDS) if (!(k in v)) throw new Bad(expected, `line ${lineNo}: missing field "${k}"`);
    if (!isCount(v.position) || !isCount(v.seq)) throw new Bad(expected, `line ${lineNo}: position and seq must be whole numbers from 1`);
    for (const k of ['stream', 'type', 'time', 'actor', 'payload', 'prev_hash', 'hash']) {
      if (typeof v[k] !== 'string') throw new Bad(v.position, `field "${k}" is not a string`);
    }
    if (v.position !== expected) {
      throw new Bad(expected, `position ${expected} is missing: the next event is position ${v.position}`);
    }
    const name = `stream ${v.stream} seq ${v.seq}`;
    const seen = lastSeq.get(v.stream);
    // A stream first seen in an export from position 1 starts at seq 1;
    // in a partial export its earlier seqs are before the export.
    if ((seen === undefined && header.from_position === 1 && v.seq !== 1)
        || (seen !== undefined && v.seq !== seen + 1)) {
      throw new Bad(v.position, `${name} follows seq ${seen ?? 0} of its stream (a gap or a repeat)`);
    }
    if (!HEX64.test(v.hash)) throw new Bad(v.position, `the hash of ${name} is not a lowercase hex SHA-256`);
    const recomputed = eventHash(v);
    if (recomputed !== v.hash) {
      throw new Bad(v.position, `the hash stored with ${name} does not match its contents (recomputed ${recomputed}, stored ${v.hash})`);
    }
    if (v.prev_hash !== prevHash) {
      throw new Bad(v.position, `the prev_hash of ${name} is not the hash of position ${v.position - 1}`);
    }
    lastSeq.set(v.stream, v.seq);
    prevHash = v.hash;
    lastHash = v.hash;
    expected += 1;
    events += 1;
  }
  if (header === null) throw Object.assign(new Error('the file is empty'), { unreadable: true });
  if (footer === null) throw new Bad(0, 'the export has no footer: it is cut short');
  const head = footer.head;
  if (head === null || typeof head !== 'object' || footer.events !== events
      || (events === 0 ? head.position !== 0 : head.position !== expected - 1) || head.hash !== lastHash) {
    throw new Bad(0, `the footer (head ${JSON.stringify(head)}, ${footer.events} events) does not name the last event`);
  }
  return { events, position: events === 0 ? 0 : expected - 1, hash: lastHash };
}

const file = process.argv[2];
if (!file || process.argv.length > 3) {
  process.stderr.write('usage: node tools/verify_export.mjs FILE\n');
  process.exit(2);
}
try {
  const r = await check(file);
  process.stdout.write(`events   ${r.events}\n`);
  process.stdout.write(`head     position ${r.position}, hash ${r.hash === '' ? '(none: the export is empty)' : r.hash}\n`);
  process.stdout.write('verified\n');
  process.exit(0);
} catch (err) {
  if (err instanceof Bad) {
    process.stdout.write(err.position > 0 ? `NOT VERIFIED: first bad position ${err.position}: ${err.message}\n`
                                          : `NOT VERIFIED: ${err.message}\n`);
    process.exit(1);
  }
  process.stderr.write(`verify_export: ${file}: ${err.message}\n`);
  process.exit(2);
}
