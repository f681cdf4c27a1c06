// The page's pure logic, with no DOM: reading the Markdown the server sends
// for thread messages into a small tree the page turns into elements (never
// into HTML strings), the composer's @-suggestions, and display helpers.
// tests/web/format.test.mjs runs these in Node.

// --- Markdown -----------------------------------------------------------------
//
// The server renders Slack's mrkdwn as a small CommonMark subset (see
// slack/format.hpp, render_inbound): **bold**, *italic*, ~~strike~~, `code`,
// ``` blocks, "> " quotes, [label](url), <url>, and backslash escapes. Lines
// are kept as lines. Anything else is text.

const ESCAPABLE = /[!-\/:-@\[-`{-~]/;
const SAFE_SCHEMES = /^(https?:|mailto:|ftp:)/i;

/// The URL if it is one the page may link to (http, https, mailto, ftp), else null.
export function safeHref(url) {
  const u = String(url).trim();
  return SAFE_SCHEMES.test(u) ? u : null;
}

function runLength(s, i, ch) {
  let n = 0;
  while (s[i + n] === ch) n++;
  return n;
}

// The index of the next run of exactly `n` backticks from `from`, or -1.
function closingBackticks(s, from, n) {
  for (let i = from; i < s.length; ) {
    if (s[i] === "`") {
      const run = runLength(s, i, "`");
      if (run === n) return i;
      i += run;
    } else i++;
  }
  return -1;
}

// The index of the run of exactly `n` × `ch` closing an emphasis opened
// before `from`: not escaped, not inside a code span, not after a space.
function closingDelimiter(s, from, ch, n) {
  for (let i = from; i < s.length; ) {
    const c = s[i];
    if (c === "\\" && i + 1 < s.length) {
      i += 2;
      continue;
    }
    if (c === "`") {
      const run = runLength(s, i, "`");
      const close = closingBackticks(s, i + run, run);
      i = close < 0 ? i + run : close + run;
      continue;
    }
    if (c === ch) {
      const run = runLength(s, i, ch);
      if (run === n && i > from && !/\s/.test(s[i - 1])) return i;
      i += run;
      continue;
    }
    i++;
  }
  return -1;
}

// [label](url) at i: the node and where it ends, or null.
function parseLink(s, i) {
  let depth = 0;
  let j = i;
  for (; j < s.length; j++) {
    if (s[j] === "\\") {
      j++;
      continue;
    }
    if (s[j] === "[") depth++;
    else if (s[j] === "]" && --depth === 0) break;
  }
  if (j >= s.length || s[j + 1] !== "(") return null;
  let url = "";
  let k = j + 2;
  for (; k < s.length && s[k] !== ")"; k++) {
    if (s[k] === "\\" && k + 1 < s.length && ESCAPABLE.test(s[k + 1])) k++;
    url += s[k];
  }
  if (k >= s.length) return null;
  const href = safeHref(url);
  const children = parseInline(s.slice(i + 1, j));
  return { node: href ? { t: "link", href, c: children } : { t: "span", c: children }, end: k + 1 };
}

const EMPHASIS = [
  { ch: "*", n: 3, wrap: (c) => ({ t: "strong", c: [{ t: "em", c }] }) },
  { ch: "*", n: 2, wrap: (c) => ({ t: "strong", c }) },
  { ch: "*", n: 1, wrap: (c) => ({ t: "em", c }) },
  { ch: "~", n: 2, wrap: (c) => ({ t: "del", c }) },
];

/// One line of Markdown as inline nodes: {t:"text",v}, {t:"code",v},
/// {t:"strong"|"em"|"del"|"span",c:[…]}, {t:"link",href,c:[…]}.
export function parseInline(s) {
  const out = [];
  let text = "";
  const flush = () => {
    if (text) out.push({ t: "text", v: text });
    text = "";
  };
  let i = 0;
  while (i < s.length) {
    const c = s[i];
    if (c === "\\" && i + 1 < s.length && ESCAPABLE.test(s[i + 1])) {
      text += s[i + 1];
      i += 2;
      continue;
    }
    if (c === "`") {
      const run = runLength(s, i, "`");
      const close = closingBackticks(s, i + run, run);
      if (close < 0) {
        text += s.slice(i, i + run);
        i += run;
        continue;
      }
      let code = s.slice(i + run, close);
      if (code.length >= 2 && code[0] === " " && code[code.length - 1] === " " && code.trim() !== "")
        code = code.slice(1, -1);
      flush();
      out.push({ t: "code", v: code });
      i = close + run;
      continue;
    }
    if (c === "<") {
      const end = s.indexOf(">", i);
      const url = end > 0 ? s.slice(i + 1, end) : "";
      if (/^\S+$/.test(url) && safeHref(url)) {
        flush();
        out.push({ t: "link", href: url, c: [{ t: "text", v: url.replace(/^mailto:/i, "") }] });
        i = end + 1;
        continue;
      }
    }
    if (c === "[") {
      const link = parseLink(s, i);
      if (link) {
        flush();
        out.push(link.node);
        i = link.end;
        continue;
      }
    }
    if (c === "*" || c === "~") {
      const run = runLength(s, i, c);
      const kind = EMPHASIS.find((e) => e.ch === c && e.n === run);
      if (kind && i + run < s.length && !/\s/.test(s[i + run])) {
        const close = closingDelimiter(s, i + run, c, run);
        if (close > i + run) {
          flush();
          out.push(kind.wrap(parseInline(s.slice(i + run, close))));
          i = close + run;
          continue;
        }
      }
      text += s.slice(i, i + run);
      i += run;
      continue;
    }
    text += c;
    i++;
  }
  flush();
  return out;
}

/// Markdown as blocks: {t:"p",lines:[inline[]]}, {t:"pre",v}, {t:"quote",blocks:[…]}.
export function parseMarkdown(md) {
  const lines = String(md ?? "").split("\n");
  const blocks = [];
  let para = null;
  const endPara = () => {
    if (para) blocks.push(para);
    para = null;
  };
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i];
    if (line.startsWith("```")) {
      // A fence: everything up to the closing fence is code, as it is.
      const code = [];
      let j = i + 1;
      while (j < lines.length && !lines[j].startsWith("```")) code.push(lines[j++]);
      if (j < lines.length) {
        endPara();
        blocks.push({ t: "pre", v: code.join("\n") });
        i = j;
        continue;
      }
    }
    if (/^>( |$)/.test(line)) {
      endPara();
      const quoted = [];
      while (i < lines.length && /^>( |$)/.test(lines[i])) quoted.push(lines[i++].replace(/^> ?/, ""));
      i--;
      blocks.push({ t: "quote", blocks: parseMarkdown(quoted.join("\n")) });
      continue;
    }
    if (line.trim() === "") {
      endPara();
      continue;
    }
    if (!para) para = { t: "p", lines: [] };
    para.lines.push(parseInline(line));
  }
  endPara();
  return blocks;
}

/// The text of inline nodes, markup dropped (for tests and titles).
export function plainText(nodes) {
  return nodes.map((n) => (n.c ? plainText(n.c) : n.v)).join("");
}

// --- @-suggestions ------------------------------------------------------------

const HANDLE_CHAR = /[A-Za-z0-9._-]/;

/// The mention being typed at `caret`: {start, query} where text[start] is
/// the '@', or null. An '@' right after a handle character (an e-mail
/// address) starts none, as on the server (extract_mentions).
export function mentionAt(text, caret) {
  let i = caret;
  while (i > 0 && HANDLE_CHAR.test(text[i - 1])) i--;
  if (i === 0 || text[i - 1] !== "@") return null;
  const at = i - 1;
  if (at > 0 && HANDLE_CHAR.test(text[at - 1])) return null;
  return { start: at, query: text.slice(i, caret) };
}

/// Candidates ({kind, handle, name}) matching a query: handles starting with
/// it first, then names with a word starting with it, then the rest that
/// contain it; at most `limit`.
export function filterMentions(candidates, query, limit = 8) {
  const q = query.toLowerCase();
  const score = (m) => {
    const handle = m.handle.toLowerCase();
    const name = (m.name || "").toLowerCase();
    if (handle.startsWith(q)) return 0;
    if (name.split(/\s+/).some((w) => w.startsWith(q))) return 1;
    if (handle.includes(q) || name.includes(q)) return 2;
    return -1;
  };
  return candidates
    .map((m, order) => ({ m, s: score(m), order }))
    .filter((x) => x.s >= 0)
    .sort((a, b) => a.s - b.s || a.order - b.order)
    .slice(0, limit)
    .map((x) => x.m);
}

/// The text with the mention at `start` (up to `caret`) replaced by
/// "@handle ", and where the caret goes.
export function insertMention(text, start, caret, handle) {
  const inserted = "@" + handle + " ";
  const rest = text.slice(caret).replace(/^ /, "");
  return { text: text.slice(0, start) + inserted + rest, caret: start + inserted.length };
}

// --- display ------------------------------------------------------------------

/// "532 B", "12.4 KB", "3.1 MB".
export function formatBytes(n) {
  if (!(n >= 0)) return "";
  if (n < 1024) return `${n} B`;
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(1)} KB`;
  return `${(n / (1024 * 1024)).toFixed(1)} MB`;
}

/// The sum of the threads' unread counts (the orange bubble).
export function unreadTotal(threads) {
  return threads.reduce((sum, t) => sum + (Number(t.unread) || 0), 0);
}

/// A thread's title: its own, else the first line of its first message.
export function threadTitle(thread) {
  return thread.title || `Thread ${thread.id}`;
}

/// "#finance" for a channel id, from the listed channels; the id when unknown.
export function channelLabel(channels, id) {
  const c = (channels || []).find((x) => x.id === id);
  return c ? `#${c.name}` : id;
}

/// How a delivery state reads: pending, sent, failed (with the reason).
export function deliveryText(message) {
  switch (message.delivery) {
    case "pending":
      return "Sending to Slack…";
    case "sent":
      return "Sent to Slack";
    case "failed":
      return `Not delivered: ${message.delivery_error || "Slack refused it"}`;
    default:
      return "";
  }
}

/// An API error body ({"error":{"code","message"}}) and status as words.
export function errorText(status, body) {
  const e = body && body.error;
  if (e && e.message) return `${e.message} (${status}${e.code ? " " + e.code : ""})`;
  if (status === 0) return "the server could not be reached (is backline running?)";
  return `the server answered ${status}`;
}
