// What the browser tests stand on: a fresh `backline serve` (the real
// binary, BACKLINE_BIN) in sandbox mode (its simulated Slack workspace
// in-process) on an ephemeral loopback port with a temp data directory; Debian's
// chromium driven by playwright-core with a fresh profile; the HTTP API and
// the fake's control surface for setting the scene; and small waiting and
// checking helpers (playwright-core has no test runner of its own).

import { spawn } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { deflateSync } from "node:zlib";
import { chromium } from "playwright-core";

export const ADMIN_TOKEN = "admin-token-for-the-browser-tests";
const CHROMIUM = process.env.CHROMIUM || "/usr/bin/chromium";

function required(name) {
  const v = process.env[name];
  if (!v) throw new Error(`${name} is not set (run the browser tests through ctest or tests/web/run.sh)`);
  return v;
}

export function sleep(ms) {
  return new Promise((r) => setTimeout(r, ms));
}

/// Waits until fn() returns something truthy (and returns it), or fails
/// with `what` after `timeout` ms. Errors thrown by fn count as "not yet".
export async function eventually(what, fn, timeout = 10000) {
  const end = Date.now() + timeout;
  let last;
  for (;;) {
    try {
      const v = await fn();
      if (v) return v;
      last = v;
    } catch (e) {
      last = e;
    }
    if (Date.now() > end) throw new Error(`timed out after ${timeout} ms waiting for ${what} (last: ${last instanceof Error ? last.message : JSON.stringify(last)})`);
    await sleep(100);
  }
}

export function check(condition, what) {
  if (!condition) throw new Error(`check failed: ${what}`);
}

export function equal(actual, expected, what) {
  if (JSON.stringify(actual) !== JSON.stringify(expected))
    throw new Error(`check failed: ${what}: expected ${JSON.stringify(expected)}, got ${JSON.stringify(actual)}`);
}

async function waitForFile(path, timeout, what) {
  return eventually(what, () => (existsSync(path) ? readFileSync(path, "utf8").trim() || null : null), timeout);
}

class Child {
  constructor(bin, args, log, env) {
    this.log = log;
    const out = [];
    this.proc = spawn(bin, args, { env, stdio: ["ignore", "pipe", "pipe"] });
    this.proc.stdout.on("data", (d) => out.push(d));
    this.proc.stderr.on("data", (d) => out.push(d));
    this.output = () => Buffer.concat(out).toString("utf8");
    this.exited = new Promise((resolve) => this.proc.on("exit", (code, signal) => resolve({ code, signal })));
  }
  async stop(timeout = 15000) {
    if (this.proc.exitCode !== null || this.proc.signalCode !== null) return this.exited;
    this.proc.kill("SIGTERM");
    const result = await Promise.race([this.exited, sleep(timeout).then(() => null)]);
    if (!result) {
      this.proc.kill("SIGKILL");
      return this.exited;
    }
    return result;
  }
}

/// A fresh backline server (`args` for `backline serve`) in sandbox mode: no
/// Slack token, so it runs the simulated Slack workspace in-process and talks
/// to it through its Web API client. The workspace's control surface (post a
/// reply as a person, edit, delete, archive a channel, inject faults) is on
/// the loopback port the server names in its log.
export async function startStack({ args = [] } = {}) {
  const dir = mkdtempSync(join(tmpdir(), "backline-web-"));
  const env = { ...process.env, BACKLINE_ADMIN_TOKEN: ADMIN_TOKEN };
  for (const name of ["SLACK_BOT_TOKEN", "SLACK_SIGNING_SECRET", "SLACK_API_URL"]) delete env[name];
  const ready = join(dir, "backline.ready");
  const server = new Child(
    required("BACKLINE_BIN"),
    ["serve", "--listen", "127.0.0.1:0", "--data", join(dir, "data"), "--ready-file", ready,
      "--http-threads", "64", "--log-requests", "off", ...args],
    "backline.log",
    env,
  );
  const stack = { dir, server };
  const hostPort = await waitForFile(ready, 20000, "backline to serve");
  stack.base = `http://${hostPort}`;
  const workspace = await eventually("the log to name the sandbox workspace", () =>
    (server.output().match(/a simulated workspace at (http:\/\/[^\s/]+)\/api\//) || [])[1], 5000);
  stack.fake = { server_url: workspace };
  return stack;
}

export async function stopStack(stack, artifacts) {
  if (!stack) return;
  const children = [stack.server];
  const results = await Promise.all(children.map((c) => c.stop()));
  if (artifacts) {
    mkdirSync(artifacts, { recursive: true });
    for (const child of children) writeFileSync(join(artifacts, child.log), child.output());
  }
  rmSync(stack.dir, { recursive: true, force: true });
  return results;
}

/// One API call as `token`; the parsed JSON answer, or an error naming the status and body.
export async function api(stack, token, method, path, body) {
  const headers = { Authorization: `Bearer ${token}` };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const res = await fetch(stack.base + path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  const text = await res.text();
  let json = null;
  try {
    json = JSON.parse(text);
  } catch {
    // not JSON
  }
  if (!res.ok) {
    const err = new Error(`${method} ${path}: ${res.status} ${text}`);
    err.status = res.status;
    throw err;
  }
  return json;
}

/// The Slack fake's control surface (post replies, edit, delete, archive…).
export async function control(stack, op, body = {}) {
  const res = await fetch(`${stack.fake.server_url}/control/${op}`, {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify(body),
  });
  const json = await res.json();
  if (!res.ok || !json.ok) throw new Error(`fake Slack ${op}: ${res.status} ${JSON.stringify(json)}`);
  return json;
}

/// The usual cast: a bot, agents alice and bob (inbox access), and a chat
/// from customer Dana assigned to alice. Returns their tokens and the chat id.
export async function cast(stack) {
  const user = (id, name, role, inbox_access = true) =>
    api(stack, ADMIN_TOKEN, "POST", "/api/v1/users", { id, name, role, inbox_access }).then((u) => u.token);
  const bot = await user("bot", "Contact center bot", "bot", false);
  const alice = await user("alice", "Alice Agent", "agent");
  const bob = await user("bob", "Bob Agent", "agent");
  const chat = await api(stack, bot, "POST", "/api/v1/chats", {
    customer: { id: "cust-7", name: "Dana Customer" },
    text: "Hello, I was charged twice for order 1234.",
  });
  await api(stack, bot, "POST", `/api/v1/chats/${chat.id}/assign`, { agent_id: "alice" });
  await api(stack, bot, "POST", `/api/v1/chats/${chat.id}/messages`, { from: "bot", text: "An agent will be with you shortly." });
  return { bot, alice, bob, chat: chat.id };
}

/// A thread opened through the API, once Slack has its parent message (its ts).
export async function threadViaApi(stack, token, chat, channel, text) {
  const t = await api(stack, token, "POST", `/api/v1/chats/${chat}/threads`, { channel_id: channel, text });
  return eventually(`thread ${t.id} to reach Slack`, async () => {
    const now = await api(stack, ADMIN_TOKEN, "GET", `/api/v1/threads/${t.id}`);
    return now.slack_ts ? now : null;
  });
}

/// Debian's chromium, headless, with a fresh profile; closed by closeBrowser.
export async function openBrowser() {
  const profile = mkdtempSync(join(tmpdir(), "backline-chromium-"));
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    args: ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
      "--disable-sync", "--no-first-run", "--disable-dev-shm-usage"],
    viewport: { width: 1280, height: 800 },
    acceptDownloads: true,
    timeout: 30000,
  });
  context.setDefaultTimeout(10000);
  const errors = [];
  context.on("page", (page) => watch(page, errors));
  for (const page of context.pages()) watch(page, errors);
  return { context, profile, errors };
}

function watch(page, errors) {
  // An exception in the page is a bug, whatever the test checks.
  page.on("pageerror", (e) => errors.push(`${page.url()}: ${e.message}`));
}

export async function closeBrowser(browser) {
  if (!browser) return;
  await browser.context.close().catch(() => {});
  rmSync(browser.profile, { recursive: true, force: true });
}

/// A page signed in as `token` (through the sign-in form).
export async function signIn(browser, stack, token, expectName) {
  const page = browser.context.pages().find((p) => p.url() === "about:blank") || (await browser.context.newPage());
  await page.goto(stack.base + "/");
  await page.getByLabel("Access token").fill(token);
  await page.getByRole("button", { name: "Sign in" }).click();
  await page.locator("#who").filter({ hasText: expectName }).waitFor();
  return page;
}

/// Screenshots of each step, named in order, into the scenario's artifact folder.
/// Before each shot, the page is checked for words that only a bug writes.
export function camera(artifacts) {
  rmSync(artifacts, { recursive: true, force: true });
  mkdirSync(artifacts, { recursive: true });
  let n = 0;
  return async (page, name) => {
    n++;
    const leaked = await page.evaluate(() => (document.body.innerText.match(/\b(null|undefined|NaN)\b|\[object \w+\]/) || [])[0]);
    if (leaked && !name.startsWith("failure")) throw new Error(`the page shows "${leaked}" at step ${name}`);
    const file = join(artifacts, `${String(n).padStart(2, "0")}-${name}.png`);
    await page.screenshot({ path: file });
    return file;
  };
}

/// A small valid PNG (w×h, one colour), for image attachments.
export function pngBytes(w = 48, h = 32, rgb = [234, 88, 12]) {
  const crcTable = Array.from({ length: 256 }, (_, n) => {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    return c >>> 0;
  });
  const crc = (buf) => {
    let c = 0xffffffff;
    for (const b of buf) c = crcTable[(c ^ b) & 0xff] ^ (c >>> 8);
    return (c ^ 0xffffffff) >>> 0;
  };
  const chunk = (type, data) => {
    const len = Buffer.alloc(4);
    len.writeUInt32BE(data.length);
    const td = Buffer.concat([Buffer.from(type, "ascii"), data]);
    const c = Buffer.alloc(4);
    c.writeUInt32BE(crc(td));
    return Buffer.concat([len, td, c]);
  };
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(w, 0);
  ihdr.writeUInt32BE(h, 4);
  ihdr[8] = 8; // bit depth
  ihdr[9] = 2; // truecolour
  const rows = [];
  for (let y = 0; y < h; y++) {
    rows.push(0);
    for (let x = 0; x < w; x++) rows.push(...((x + y) % 8 < 4 ? rgb : [255, 255, 255]));
  }
  return Buffer.concat([
    Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    chunk("IHDR", ihdr),
    chunk("IDAT", deflateSync(Buffer.from(rows))),
    chunk("IEND", Buffer.alloc(0)),
  ]);
}

