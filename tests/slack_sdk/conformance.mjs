// Conformance of backline's fake Slack (slack/fake_slack.*) with Slack's own
// Node SDK: if @slack/web-api and @slack/bolt accept what the fake says, the
// fake speaks Slack's wire format the way Slack's clients expect.
//
// Needs a running fake (tests/slack/sdk_conformance_test.cpp starts one):
//   FAKE_SLACK_URL             Web API base, "http://127.0.0.1:PORT/api/"
//   FAKE_SLACK_TOKEN           the bot token
//   FAKE_SLACK_SIGNING_SECRET  the signing secret of pushed events
//   FAKE_SLACK_CONTROL_URL     "http://127.0.0.1:PORT/control/"
// Prints one line per check; exits non-zero when any check fails.

import assert from 'node:assert/strict';
import http from 'node:http';
import { ErrorCode, LogLevel, WebClient, WebClientEvent } from '@slack/web-api';
import { isValidSlackRequest, verifySlackRequest } from '@slack/bolt';

const env = (name) => {
  const v = process.env[name];
  if (!v) {
    console.error(`conformance: ${name} is not set`);
    process.exit(2);
  }
  return v;
};
const baseUrl = env('FAKE_SLACK_URL');
const token = env('FAKE_SLACK_TOKEN');
const signingSecret = env('FAKE_SLACK_SIGNING_SECRET');
const controlUrl = env('FAKE_SLACK_CONTROL_URL').replace(/\/?$/, '/');

const channel = 'C0FINANCE';
const tsPattern = /^\d{10}\.\d{6}$/;
// Small retry delays: the SDK retries 429 (after Retry-After) and HTTP errors.
const retryConfig = { retries: 3, factor: 1, minTimeout: 10, maxTimeout: 50 };
const client = new WebClient(token, { slackApiUrl: baseUrl, retryConfig, logLevel: LogLevel.ERROR });

/** Drives the fake's control surface (the people and the weather on the Slack side). */
async function control(op, body = {}) {
  const res = await fetch(controlUrl + op, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify(body),
  });
  const json = await res.json();
  if (!res.ok || !json.ok) throw new Error(`control ${op}: ${res.status} ${JSON.stringify(json)}`);
  return json;
}

const failures = [];
async function check(name, fn) {
  try {
    await fn();
    console.log(`ok - ${name}`);
  } catch (err) {
    failures.push(name);
    console.log(`not ok - ${name}\n  ${(err && err.stack) || err}`);
  }
}

let parentTs;
const replyTs = [];

await check('auth.test answers the bot identity', async () => {
  const res = await client.auth.test();
  assert.equal(res.ok, true);
  assert.match(res.user_id, /^U/);
  assert.match(res.bot_id, /^B/);
});

await check('chat.postMessage answers channel, ts and the message with its metadata', async () => {
  const metadata = { event_type: 'backline_outbox', event_payload: { outbox_id: 'ob-42' } };
  const res = await client.chat.postMessage({ channel, text: 'Refund for order 42? <@U0ERIN>', metadata, unfurl_links: false });
  assert.equal(res.ok, true);
  assert.equal(res.channel, channel);
  assert.match(res.ts, tsPattern);
  assert.equal(res.message.text, 'Refund for order 42? <@U0ERIN>');
  assert.ok(res.message.bot_id);
  assert.deepEqual(res.message.metadata, metadata);
  parentTs = res.ts;
});

await check('people reply through /control; conversations.replies pages with client.paginate', async () => {
  for (let i = 1; i <= 8; i++) {
    const r = await control('post_reply', { channel, thread_ts: parentTs, user: i % 2 ? 'U0ERIN' : 'U0HUGO', text: `reply ${i}` });
    assert.match(r.ts, tsPattern);
    replyTs.push(r.ts);
  }
  const pages = [];
  for await (const page of client.paginate('conversations.replies', { channel, ts: parentTs, limit: 3, include_all_metadata: true })) {
    assert.equal(page.ok, true);
    pages.push(page);
  }
  assert.ok(pages.length >= 3, `expected at least 3 pages, got ${pages.length}`);
  const all = pages.flatMap((p) => p.messages);
  assert.deepEqual(all.map((m) => m.ts), [parentTs, ...replyTs]);
  assert.equal(all[0].reply_count, 8);
  assert.equal(all[0].latest_reply, replyTs.at(-1));
  assert.equal(all[0].metadata.event_payload.outbox_id, 'ob-42');
  for (const m of all.slice(1)) {
    assert.equal(m.thread_ts, parentTs);
    assert.match(m.user, /^U0(ERIN|HUGO)$/);
  }
  assert.equal(pages.at(-1).has_more, false);
  assert.equal(pages.at(-1).response_metadata.next_cursor, '');
});

await check('users.conversations pages with client.paginate', async () => {
  const ids = [];
  let pages = 0;
  for await (const page of client.paginate('users.conversations', { types: 'public_channel,private_channel', exclude_archived: true, limit: 1 })) {
    pages++;
    ids.push(...page.channels.map((c) => c.id));
  }
  assert.ok(pages >= 3);
  assert.ok(ids.includes('C0FINANCE') && ids.includes('C0HR') && ids.includes('C0OPS'));
});

await check('files.uploadV2 (getUploadURLExternal + upload + completeUploadExternal) gives one message', async () => {
  const content = Buffer.from('order,amount\n42,19.99\n');
  const res = await client.files.uploadV2({
    channel_id: channel,
    thread_ts: parentTs,
    initial_comment: 'the refund report',
    file: content,
    filename: 'refund.csv',
    title: 'Refund report',
  });
  assert.equal(res.ok, true);
  const fileId = res.files[0].files[0].id;
  assert.match(fileId, /^F/);
  assert.equal(res.files[0].files[0].title, 'Refund report');

  const thread = await client.conversations.replies({ channel, ts: parentTs, latest: '9999999999', oldest: replyTs.at(-1) });
  const msg = thread.messages.at(-1);
  assert.equal(msg.text, 'the refund report');
  assert.equal(msg.files.length, 1);
  const file = msg.files[0];
  assert.equal(file.id, fileId);
  assert.equal(file.name, 'refund.csv');
  assert.equal(file.mimetype, 'text/csv');
  assert.equal(file.size, content.length);

  const withToken = await fetch(file.url_private_download, { headers: { Authorization: `Bearer ${token}` } });
  assert.equal(withToken.status, 200);
  assert.deepEqual(Buffer.from(await withToken.arrayBuffer()), content);
  const anonymous = await fetch(file.url_private);
  assert.equal(anonymous.status, 401);
});

await check('a 429 with Retry-After is retried by the SDK after the given time', async () => {
  await control('inject_fault', { method: 'conversations.replies', kind: 'ratelimit', count: 1, retry_after: 1 });
  const seen = [];
  const onLimit = (retryAfter) => seen.push(retryAfter);
  client.on(WebClientEvent.RATE_LIMITED, onLimit);
  const start = Date.now();
  try {
    const res = await client.conversations.replies({ channel, ts: parentTs, limit: 1 });
    assert.equal(res.ok, true);
    assert.equal(res.messages[0].ts, parentTs);
  } finally {
    client.off(WebClientEvent.RATE_LIMITED, onLimit);
  }
  assert.deepEqual(seen, [1]);
  assert.ok(Date.now() - start >= 950, 'the SDK waited for Retry-After');
});

await check('rejectRateLimitedCalls surfaces the 429 as a rate-limited error with retryAfter', async () => {
  const strict = new WebClient(token, { slackApiUrl: baseUrl, retryConfig, rejectRateLimitedCalls: true, logLevel: LogLevel.ERROR });
  await control('inject_fault', { method: 'users.info', kind: 'ratelimit', count: 1, retry_after: 7 });
  await assert.rejects(strict.users.info({ user: 'U0ERIN' }), (err) => {
    assert.equal(err.code, ErrorCode.RateLimitedError);
    assert.equal(err.retryAfter, 7);
    return true;
  });
});

await check('an HTTP 500 is retried by the SDK', async () => {
  await control('inject_fault', { method: 'users.info', kind: 'server_error', count: 1 });
  const res = await client.users.info({ user: 'U0ERIN' });
  assert.equal(res.user.name, 'erin');
  assert.equal(res.user.real_name, 'Erin Finance');
  assert.equal(res.user.profile.display_name, 'erin');
  const calls = (await control('calls')).calls.filter((c) => c.method === 'users.info');
  assert.deepEqual(calls.slice(-2).map((c) => c.http_status), [500, 200]);
});

await check('ok:false answers become platform errors with the Slack error code', async () => {
  await assert.rejects(client.chat.postMessage({ channel: 'C0NOPE', text: 'x' }), (err) => {
    assert.equal(err.code, ErrorCode.PlatformError);
    assert.equal(err.data.error, 'channel_not_found');
    return true;
  });
  await assert.rejects(client.chat.postMessage({ channel, text: 'x', thread_ts: '1.000001' }), (err) => {
    assert.equal(err.data.error, 'thread_not_found');
    return true;
  });
  const bad = new WebClient('xoxb-wrong', { slackApiUrl: baseUrl, retryConfig, logLevel: LogLevel.ERROR });
  await assert.rejects(bad.auth.test(), (err) => err.data.error === 'invalid_auth');
});

await check('usergroups.list answers id, handle and name', async () => {
  const res = await client.usergroups.list({ include_disabled: false });
  const fin = res.usergroups.find((g) => g.id === 'S0FIN');
  assert.equal(fin.handle, 'finance-team');
  assert.ok(fin.name);
});

await check("pushed events pass bolt's verifySlackRequest, and are retried after a 500", async () => {
  const received = [];
  let failNext = false;
  let notify = () => {};
  const server = http.createServer((req, res) => {
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks).toString('utf8');
      const parsed = JSON.parse(body);
      if (parsed.type === 'url_verification') {
        res.writeHead(200, { 'Content-Type': 'application/json' });
        res.end(JSON.stringify({ challenge: parsed.challenge }));
        return;
      }
      received.push({ headers: req.headers, body });
      res.writeHead(failNext ? 500 : 200);
      failNext = false;
      res.end();
      notify();
    });
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  const url = `http://127.0.0.1:${server.address().port}/slack/events`;
  const waitFor = (n, ms) =>
    new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`only ${received.length} of ${n} deliveries`)), ms);
      notify = () => {
        if (received.length >= n) {
          clearTimeout(timer);
          resolve();
        }
      };
      notify();
    });
  try {
    await control('events_url', { url });
    assert.equal((await control('verify_events_url')).verified, true);

    failNext = true;
    const { ts } = await control('post_reply', { channel, thread_ts: parentTs, user: 'U0ERIN', text: 'paid, see <#C0FINANCE>' });
    await waitFor(2, 5000);

    for (const { headers, body } of received) {
      const options = {
        signingSecret,
        body,
        headers: {
          'x-slack-signature': headers['x-slack-signature'],
          'x-slack-request-timestamp': Number(headers['x-slack-request-timestamp']),
        },
      };
      verifySlackRequest(options); // throws when the signature is wrong
      assert.equal(isValidSlackRequest({ ...options, body: body + ' ' }), false);
      assert.equal(isValidSlackRequest({ ...options, signingSecret: 'not-the-secret' }), false);
    }
    assert.equal(received[0].headers['x-slack-retry-num'], undefined);
    assert.equal(received[1].headers['x-slack-retry-num'], '1');
    assert.equal(received[1].headers['x-slack-retry-reason'], 'http_error');
    assert.equal(received[0].body, received[1].body);

    const envelope = JSON.parse(received[0].body);
    assert.equal(envelope.type, 'event_callback');
    assert.match(envelope.event_id, /^Ev/);
    assert.equal(typeof envelope.event_time, 'number');
    assert.match(envelope.team_id, /^T/);
    const e = envelope.event;
    assert.equal(e.type, 'message');
    assert.equal(e.channel, channel);
    assert.equal(e.ts, ts);
    assert.equal(e.thread_ts, parentTs);
    assert.equal(e.user, 'U0ERIN');
    assert.equal(e.text, 'paid, see <#C0FINANCE>');
  } finally {
    await control('events_url', { url: '' });
    await new Promise((resolve) => server.close(resolve));
  }
});

if (failures.length) {
  console.log(`conformance: ${failures.length} check(s) failed: ${failures.join('; ')}`);
  process.exit(1);
}
console.log('conformance: all checks passed');
