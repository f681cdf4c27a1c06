// The page's pure logic (web/format.js) in Node, without a browser:
//   node --test tests/web/format.test.mjs
// The Markdown cases are what the server's render_inbound produces (see
// tests/slack/format_test.cpp), read back into elements.

import { test } from "node:test";
import assert from "node:assert/strict";
import * as fmt from "../../web/format.js";

const text = (v) => ({ t: "text", v });

test("inline Markdown: bold, italic, both, strike, code, links", () => {
  assert.deepEqual(fmt.parseInline("**bold** *italic* ~~strike~~"), [
    { t: "strong", c: [text("bold")] }, text(" "), { t: "em", c: [text("italic")] }, text(" "),
    { t: "del", c: [text("strike")] },
  ]);
  assert.deepEqual(fmt.parseInline("***both***"), [{ t: "strong", c: [{ t: "em", c: [text("both")] }] }]);
  assert.deepEqual(fmt.parseInline("~~**a** b~~"), [{ t: "del", c: [{ t: "strong", c: [text("a")] }, text(" b")] }]);
  assert.deepEqual(fmt.parseInline("**bold `code`**"), [{ t: "strong", c: [text("bold "), { t: "code", v: "code" }] }]);
  assert.deepEqual(fmt.parseInline("run `make *all*` now"), [text("run "), { t: "code", v: "make *all*" }, text(" now")]);
  assert.deepEqual(fmt.parseInline("`  padded  `"), [{ t: "code", v: " padded " }]);
  assert.deepEqual(fmt.parseInline("[label](https://x.com)"), [{ t: "link", href: "https://x.com", c: [text("label")] }]);
  assert.deepEqual(fmt.parseInline("[a \\[b\\] \\*c\\*](https://x.com/\\(a\\))"), [
    { t: "link", href: "https://x.com/(a)", c: [text("a [b] *c*")] },
  ]);
  assert.deepEqual(fmt.parseInline("see <https://x.com/a?b=1&c=2>"), [
    text("see "), { t: "link", href: "https://x.com/a?b=1&c=2", c: [text("https://x.com/a?b=1&c=2")] },
  ]);
  assert.deepEqual(fmt.parseInline("[a@b.com](mailto:a@b.com)"), [{ t: "link", href: "mailto:a@b.com", c: [text("a@b.com")] }]);
});

test("inline Markdown: escapes and stray markers stay text, unsafe links are not links", () => {
  assert.deepEqual(fmt.parseInline("2\\*3\\*4"), [text("2*3*4")]);
  assert.deepEqual(fmt.parseInline("a \\* b \\* c"), [text("a * b * c")]);
  assert.deepEqual(fmt.parseInline("snake_case_words"), [text("snake_case_words")]);
  assert.deepEqual(fmt.parseInline("\\`\\` empty"), [text("`` empty")]);
  assert.deepEqual(fmt.parseInline("a * b"), [text("a * b")]);
  assert.deepEqual(fmt.parseInline("**open"), [text("**open")]);
  assert.deepEqual(fmt.parseInline("`open"), [text("`open")]);
  assert.deepEqual(fmt.parseInline("[x](javascript:alert(1))"), [{ t: "span", c: [text("x")] }, text(")")]);
  assert.deepEqual(fmt.parseInline("<javascript:alert(1)>"), [text("<javascript:alert(1)>")]);
  assert.deepEqual(fmt.parseInline("\\<b> & <3"), [text("<b> & <3")]);
  assert.equal(fmt.safeHref("JAVASCRIPT:x"), null);
  assert.equal(fmt.safeHref("data:text/html,x"), null);
  assert.equal(fmt.safeHref("https://a.b"), "https://a.b");
});

test("block Markdown: lines, paragraphs, code blocks and quotes", () => {
  assert.deepEqual(fmt.parseMarkdown("one\ntwo\n\nthree"), [
    { t: "p", lines: [[text("one")], [text("two")]] },
    { t: "p", lines: [[text("three")]] },
  ]);
  assert.deepEqual(fmt.parseMarkdown("before\n```\ncode *x*\n  indented\n```\nafter"), [
    { t: "p", lines: [[text("before")]] },
    { t: "pre", v: "code *x*\n  indented" },
    { t: "p", lines: [[text("after")]] },
  ]);
  assert.deepEqual(fmt.parseMarkdown("> one\n> two\n\nreply"), [
    { t: "quote", blocks: [{ t: "p", lines: [[text("one")], [text("two")]] }] },
    { t: "p", lines: [[text("reply")]] },
  ]);
  assert.deepEqual(fmt.parseMarkdown("```\nunclosed"), [{ t: "p", lines: [[text("```")], [text("unclosed")]] }]);
  assert.deepEqual(fmt.parseMarkdown(""), []);
  assert.deepEqual(fmt.parseMarkdown(undefined), []);
});

test("@-suggestions: what is being typed, what matches, what goes in", () => {
  assert.deepEqual(fmt.mentionAt("hi @fin", 7), { start: 3, query: "fin" });
  assert.deepEqual(fmt.mentionAt("@", 1), { start: 0, query: "" });
  assert.equal(fmt.mentionAt("mail dana@example", 17), null);  // an address
  assert.equal(fmt.mentionAt("no mention", 10), null);
  assert.deepEqual(fmt.mentionAt("@here and", 3), { start: 0, query: "he" });
  const all = [
    { kind: "special", handle: "here", name: "everyone active in the channel" },
    { kind: "special", handle: "channel", name: "everyone in the channel" },
    { kind: "usergroup", handle: "finance-team", name: "Finance team" },
    { kind: "user", handle: "erin", name: "Erin Finance" },
    { kind: "user", handle: "hugo", name: "Hugo" },
  ];
  assert.deepEqual(fmt.filterMentions(all, "fin").map((m) => m.handle), ["finance-team", "erin"]);
  assert.deepEqual(fmt.filterMentions(all, "h").map((m) => m.handle), ["here", "hugo", "channel"]);
  assert.equal(fmt.filterMentions(all, "").length, 5);
  assert.equal(fmt.filterMentions(all, "", 2).length, 2);
  assert.deepEqual(fmt.filterMentions(all, "zzz"), []);
  assert.deepEqual(fmt.insertMention("ask @fin now", 4, 8, "finance-team"), { text: "ask @finance-team now", caret: 18 });
  assert.deepEqual(fmt.insertMention("@he", 0, 3, "here"), { text: "@here ", caret: 6 });
});

test("display helpers: sizes, unread totals, channels, delivery and errors in words", () => {
  assert.equal(fmt.formatBytes(532), "532 B");
  assert.equal(fmt.formatBytes(12700), "12.4 KB");
  assert.equal(fmt.formatBytes(3 * 1024 * 1024), "3.0 MB");
  assert.equal(fmt.unreadTotal([{ unread: 2 }, { unread: 0 }, { unread: 1 }]), 3);
  assert.equal(fmt.unreadTotal([]), 0);
  assert.equal(fmt.channelLabel([{ id: "C1", name: "finance" }], "C1"), "#finance");
  assert.equal(fmt.channelLabel(null, "C9"), "C9");
  assert.equal(fmt.deliveryText({ delivery: "pending" }), "Sending to Slack…");
  assert.equal(fmt.deliveryText({ delivery: "sent" }), "Sent to Slack");
  assert.equal(fmt.deliveryText({ delivery: "failed", delivery_error: "is_archived" }), "Not delivered: is_archived");
  assert.equal(fmt.errorText(409, { error: { code: "thread_done", message: "thread x is done" } }), "thread x is done (409 thread_done)");
  assert.equal(fmt.errorText(0, null), "the server could not be reached (is backline running?)");
  assert.equal(fmt.errorText(502, null), "the server answered 502");
});
