// The agent inbox page in a real browser (Debian's chromium, playwright-core)
// against the real `backline serve` and the local Slack fake. Each scenario
// gets a fresh server, fake and browser profile, and saves a screenshot of
// each step under $WEB_ARTIFACTS/<scenario>/.
//
//   node inbox.test.mjs <scenario>     one scenario (how ctest runs them)
//   node inbox.test.mjs --list         the scenarios' names
//   node inbox.test.mjs                every scenario

import { join } from "node:path";
import { readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import {
  ADMIN_TOKEN, api, camera, cast, check, closeBrowser, control, equal, eventually, openBrowser, pngBytes, signIn,
  sleep, startStack, stopStack, threadViaApi,
} from "./harness.mjs";

const ARTIFACTS = process.env.WEB_ARTIFACTS || join(tmpdir(), "backline-web-artifacts");
const SCENARIO_TIMEOUT_MS = 150000;

const chatUrl = (stack, tab, chat, rest = "") => `${stack.base}/#/${tab}/${encodeURIComponent(chat)}${rest}`;
const threadUrl = (stack, tab, chat, thread) =>
  chatUrl(stack, tab, chat, `/threads/${encodeURIComponent(thread)}`);

async function bannerText(page) {
  const banner = page.locator("#banner");
  await banner.waitFor();
  return banner.textContent();
}

async function threadMessages(stack, thread) {
  return (await api(stack, ADMIN_TOKEN, "GET", `/api/v1/threads/${thread}/messages`)).messages;
}

async function sentToSlack(stack) {
  const res = await fetch(`${stack.fake.server_url}/control/sent`, { method: "POST", body: "{}" });
  return (await res.json()).sent;
}

const scenarios = {
  "sign-in": {
    title: "sign-in takes a token for the tab only, refuses unknown and bot tokens in words, and signs out",
    async run({ stack, browser, shot, people }) {
      const page = await browser.context.newPage();
      await page.goto(stack.base + "/");
      await page.getByLabel("Access token").fill("not-a-token");
      await page.getByRole("button", { name: "Sign in" }).click();
      await page.getByText("That token is not known to this server.").waitFor();
      await shot(page, "unknown-token");
      await page.getByLabel("Access token").fill(people.bot);
      await page.getByRole("button", { name: "Sign in" }).click();
      await page.getByText("bot role, which has no inbox page").waitFor();

      await page.getByLabel("Access token").fill(people.alice);
      await page.getByRole("button", { name: "Sign in" }).click();
      await page.locator("#who").filter({ hasText: "Alice Agent" }).waitFor();
      equal(await page.locator("#role").textContent(), "agent", "the role in the header");
      equal(await page.locator("nav.tabs a").allTextContents(), ["My Chats", "Resolved Chats"], "an agent's tabs");
      equal(await page.locator('nav.tabs a[aria-current="page"]').textContent(), "My Chats", "the tab shown first");
      await shot(page, "signed-in");
      // Kept for this tab only: sessionStorage, never localStorage; a reload keeps it.
      const stored = await page.evaluate(() => [sessionStorage.getItem("backline.token"), localStorage.length]);
      equal(stored, [people.alice, 0], "where the token is kept");
      await page.reload();
      await page.locator("#who").filter({ hasText: "Alice Agent" }).waitFor();
      const other = await browser.context.newPage();
      await other.goto(stack.base + "/");
      await other.getByLabel("Access token").waitFor();
      await other.close();

      await page.getByRole("button", { name: "Sign out" }).click();
      await page.getByLabel("Access token").waitFor();
      equal(await page.evaluate(() => sessionStorage.getItem("backline.token")), null, "the token after signing out");
      await shot(page, "signed-out");
    },
  },

  "new-thread-live-bubble": {
    title: "an agent opens a chat, creates a thread in #finance, an L2 reply shows the bubble with 1 live, reading clears it",
    async run({ stack, browser, shot, people }) {
      const { chat } = people;
      const page = await signIn(browser, stack, people.alice, "Alice Agent");
      const item = page.locator(`[data-chat-id="${chat}"]`);
      await item.waitFor();
      check((await item.textContent()).includes("Dana Customer"), "My Chats names the customer");
      await shot(page, "my-chats");
      await item.click();
      await page.locator("#transcript").getByText("charged twice").waitFor();
      await page.locator("#chat-title").filter({ hasText: "Dana Customer" }).waitFor();
      check(await page.locator("#unread-bubble").isHidden(), "no bubble before any reply");
      await shot(page, "chat");

      await page.locator("#threads-button").click();
      await page.getByText("No internal threads yet.").waitFor();
      await page.getByRole("link", { name: "+ New thread" }).click();
      const to = page.locator("#thread-to");
      await eventually("the To list to offer the Slack channels", async () => {
        const names = await to.locator("option").allTextContents();
        return names.includes("#finance") && names.includes("#hr") && names.includes("#operations");
      });
      // A channel Slack stops offering stays listed, greyed, with the reason.
      await control(stack, "archive_channel", { channel: "C0OPS" });
      await page.getByRole("link", { name: "Back to the threads" }).click();
      await page.getByRole("link", { name: "+ New thread" }).click();
      const ops = to.locator("option", { hasText: "#operations" });
      await eventually("#operations to be unavailable with its reason", async () =>
        (await ops.isDisabled()) && /unavailable: .+/.test(await ops.textContent()));
      check(!(await to.locator("option", { hasText: "#finance" }).isDisabled()), "#finance can be chosen");
      equal(await page.locator("#thread-from").textContent(), "Alice Agent (alice)", "From: the agent's name and id");
      check((await page.locator("#thread-chat").textContent()).includes("Dana Customer (cust-7)"), "the chat details");

      await to.selectOption("C0FINANCE");
      const query = page.locator("#new-thread-text");
      await query.pressSequentially("Was order 1234 refunded? @fin");
      const suggestion = page.locator("#new-thread-suggestions [role=option]").first();
      await suggestion.filter({ hasText: "@finance-team" }).waitFor();
      await shot(page, "new-thread-form");
      await query.press("Enter");  // picks the suggestion
      equal(await query.inputValue(), "Was order 1234 refunded? @finance-team ", "the query with the picked mention");
      await query.pressSequentially("please check.");
      await page.getByRole("button", { name: "Create thread" }).click();

      const opening = page.locator("#thread-messages .msg-out").first();
      await opening.getByText("Was order 1234 refunded?").waitFor();
      await eventually("the opening message to be sent to Slack", async () =>
        (await opening.locator(".delivery").textContent()) === "Sent to Slack");
      const threads = (await api(stack, people.alice, "GET", `/api/v1/chats/${chat}/threads`)).threads;
      equal(threads.length, 1, "threads of the chat");
      const thread = threads[0];
      equal(thread.channel_id, "C0FINANCE", "the thread's channel");
      const parent = (await sentToSlack(stack)).find((s) => s.method === "chat.postMessage" && !s.thread_ts);
      check(parent && parent.text.includes("Alice Agent (alice)") && parent.text.includes("Was order 1234 refunded?"),
        "Slack got the agent, the chat details and the query");
      check(parent.text.includes("<!subteam^S0FIN>"), `the picked @finance-team is a real Slack mention: ${parent.text}`);
      await page.locator("#transcript .msg-internal_note").first().waitFor();
      check((await page.locator("#transcript .msg-internal_note .tag").first().textContent()).includes("Internal note"),
        "the internal note is marked as internal");
      await shot(page, "thread-created");

      // The chat stays open, the panel closed: a reply arrives in Slack.
      await page.getByRole("link", { name: "Close the threads panel" }).click();
      await page.locator("#threads-pane").waitFor({ state: "hidden" });
      const ts = (await api(stack, ADMIN_TOKEN, "GET", `/api/v1/threads/${thread.id}`)).slack_ts;
      await api(stack, ADMIN_TOKEN, "POST", "/api/v1/sandbox/slack/replies", {
        channel_id: "C0FINANCE", thread_ts: ts, user_name: "Erin (Finance)", text: "Yes: refunded on *Monday* :tada:",
      });
      // Live: the long poll brings it (the slow safety-net refresh is 30 s away).
      await eventually("the orange bubble to show 1", async () =>
        (await page.locator("#unread-bubble").isVisible()) && (await page.locator("#unread-bubble").textContent()) === "1", 5000);
      const color = await page.locator("#unread-bubble").evaluate((el) => getComputedStyle(el).backgroundColor);
      equal(color, "rgb(194, 65, 12)", "the bubble's orange");
      check((await page.locator("#threads-button").getAttribute("aria-label")).includes("1 unread"), "the button says it in words");
      await shot(page, "bubble");

      await page.locator("#threads-button").click();
      const listed = page.locator(`[data-thread-id="${thread.id}"]`);
      await listed.locator(".count").filter({ hasText: "1" }).waitFor();
      check((await listed.textContent()).includes("#finance"), "the thread list shows the channel");
      await shot(page, "thread-list-unread");
      await listed.click();
      const reply = page.locator("#thread-messages .msg-in").filter({ hasText: "refunded on" });
      await reply.waitFor();
      equal(await reply.locator(".msg-body strong").textContent(), "Monday", "the reply's bold");
      check((await reply.textContent()).includes("🎉"), "the reply's emoji");
      check((await reply.locator(".msg-head").textContent()).includes("Erin (Finance)"), "the reply's author");
      await eventually("the bubble to go", () => page.locator("#unread-bubble").isHidden());
      equal((await api(stack, ADMIN_TOKEN, "GET", `/api/v1/threads/${thread.id}`)).unread, 0, "unread after reading");
      await shot(page, "reply-read");
    },
  },

  "formatting-edits-deletes-delivery": {
    title: "Slack formatting is rendered, edits and deletions are marked, delivery shows pending then sent, or failed with the reason",
    async run({ stack, browser, shot, people }) {
      const { chat } = people;
      const thread = await threadViaApi(stack, people.alice, chat, "C0FINANCE", "Can you confirm the refund?");
      const page = await signIn(browser, stack, people.alice, "Alice Agent");
      await page.goto(threadUrl(stack, "mine", chat, thread.id));
      await page.locator("#thread-messages .msg-out").first().waitFor();

      // An L2 person replies in Slack; the signed event reaches backline.
      const posted = await control(stack, "post_reply", {
        channel: "C0FINANCE", thread_ts: thread.slack_ts, user: "U0ERIN",
        text: "*Refunded* on _Monday_, ~pending~ done. See <https://example.com/r/1|the receipt> :white_check_mark: `REF-42`\n> your order 1234",
      });
      const reply = page.locator("#thread-messages .msg-in").first();
      await reply.waitFor({ timeout: 15000 });
      equal(await reply.locator(".msg-body strong").textContent(), "Refunded", "bold");
      equal(await reply.locator("em").textContent(), "Monday", "italic");
      equal(await reply.locator("del").textContent(), "pending", "strike");
      equal(await reply.locator("code").textContent(), "REF-42", "code");
      const link = reply.locator("a");
      equal(await link.textContent(), "the receipt", "the link's label");
      equal(await link.getAttribute("href"), "https://example.com/r/1", "the link's URL");
      equal(await link.getAttribute("rel"), "noopener noreferrer", "the link opens apart");
      check((await reply.textContent()).includes("✅"), "the emoji shortcode as Unicode");
      equal(await reply.locator("blockquote").textContent(), "your order 1234", "the quote");
      check((await reply.locator(".msg-head").textContent()).includes("erin"), "the author's Slack name");
      await shot(page, "formatted-reply");

      await control(stack, "edit_message", { channel: "C0FINANCE", ts: posted.ts, text: "*Refunded* on Tuesday" });
      await reply.locator(".tag-edited").waitFor({ timeout: 15000 });
      await reply.getByText("on Tuesday").waitFor();
      await shot(page, "edited");
      await control(stack, "delete_message", { channel: "C0FINANCE", ts: posted.ts });
      await reply.getByText("This message was deleted in Slack.").waitFor({ timeout: 15000 });
      await shot(page, "deleted");

      // Our own message, held up in Slack: pending, then sent; rendered like a reply.
      await control(stack, "inject_fault", { method: "chat.postMessage", kind: "slow", delay_ms: 2500, count: 1 });
      const text = page.locator("#reply-text");
      await text.fill("*Thanks*, closing this on our side :+1:");
      await text.press("Enter");
      const mine = page.locator("#thread-messages .msg-out").last();
      await mine.filter({ hasText: "Thanks" }).waitFor();
      await mine.locator(".delivery-pending").filter({ hasText: "Sending to Slack…" }).waitFor();
      await shot(page, "pending");
      equal(await mine.locator(".msg-body strong").textContent(), "Thanks", "our bold");
      check((await mine.textContent()).includes("👍"), "our emoji");
      await mine.locator(".delivery-sent").waitFor({ timeout: 15000 });

      // A thread in a channel Slack refuses: failed, with the reason.
      await control(stack, "archive_channel", { channel: "C0HR" });
      const refused = await api(stack, people.alice, "POST", `/api/v1/chats/${chat}/threads`, { channel_id: "C0HR", text: "Payroll question" });
      await page.goto(threadUrl(stack, "mine", chat, refused.id));
      const failed = page.locator("#thread-messages .delivery-failed");
      await failed.waitFor({ timeout: 15000 });
      check((await failed.textContent()).startsWith("Not delivered: ") && (await failed.textContent()).includes("archived"),
        `the failure's reason in words: ${await failed.textContent()}`);
      await shot(page, "failed");
    },
  },

  "reply-with-files": {
    title: "a reply with text, emoji, an image and a file is one message: the image previews inline, the file downloads",
    async run({ stack, browser, shot, people }) {
      const { chat } = people;
      const thread = await threadViaApi(stack, people.alice, chat, "C0FINANCE", "Which receipt do you need?");
      const page = await signIn(browser, stack, people.alice, "Alice Agent");
      await page.goto(threadUrl(stack, "mine", chat, thread.id));
      const text = page.locator("#reply-text");
      await text.fill("Here is the receipt ");
      await page.getByRole("button", { name: "Add emoji" }).click();
      await page.getByRole("button", { name: "Insert 🧾" }).click();
      equal(await text.inputValue(), "Here is the receipt 🧾", "the emoji at the caret");
      const png = pngBytes();
      await page.locator("#reply-files").setInputFiles([
        { name: "receipt.png", mimeType: "image/png", buffer: png },
        { name: "notes.txt", mimeType: "text/plain", buffer: Buffer.from("refund 1234: 49.90 EUR\n") },
      ]);
      equal(await page.locator("#reply-composer .chip").count(), 2, "two files waiting");
      await shot(page, "composer-with-files");
      await page.locator("#reply-composer").getByRole("button", { name: "Send", exact: true }).click();

      const sent = page.locator("#thread-messages .msg-out").last();
      await sent.filter({ hasText: "Here is the receipt" }).waitFor();
      const img = sent.locator("img.preview");
      await eventually("the image to preview inline", () => img.evaluate((el) => el.complete && el.naturalWidth === 48));
      equal(await img.getAttribute("alt"), "receipt.png", "the image's alternative text");
      check((await img.getAttribute("src")).startsWith("blob:"), "the preview comes from the fetched bytes");
      await shot(page, "image-preview");

      const [download] = await Promise.all([
        page.waitForEvent("download"),
        sent.getByRole("button", { name: /Download notes\.txt/ }).click(),
      ]);
      equal(download.suggestedFilename(), "notes.txt", "the downloaded file's name");
      equal(readFileSync(await download.path(), "utf8"), "refund 1234: 49.90 EUR\n", "the downloaded bytes");

      // One message, in the inbox and in Slack.
      const messages = await threadMessages(stack, thread.id);
      const last = messages[messages.length - 1];
      equal(messages.length, 2, "the opening message and one reply");
      equal(last.text, "Here is the receipt 🧾", "the message's text");
      equal(last.files.map((f) => f.name), ["receipt.png", "notes.txt"], "the message's files");
      await eventually("the files to reach Slack as one message", async () =>
        (await sentToSlack(stack)).some((s) => s.method === "files.completeUploadExternal" && s.text.includes("Here is the receipt")), 15000);
    },
  },

  "mark-as-done": {
    title: "Mark as Done asks first, then the thread is read-only",
    async run({ stack, browser, shot, people }) {
      const { chat } = people;
      const thread = await threadViaApi(stack, people.alice, chat, "C0FINANCE", "Is the chargeback closed?");
      const page = await signIn(browser, stack, people.alice, "Alice Agent");
      await page.goto(threadUrl(stack, "mine", chat, thread.id));
      await page.locator("#reply-text").waitFor();
      await page.getByRole("button", { name: "Mark as Done" }).click();
      const dialog = page.getByRole("dialog");
      await dialog.waitFor();
      await shot(page, "confirm");
      await dialog.getByRole("button", { name: "Cancel" }).click();
      check(await page.locator("#reply-text").isVisible(), "cancelled: still writable");

      await page.getByRole("button", { name: "Mark as Done" }).click();
      await page.getByRole("dialog").getByRole("button", { name: "Mark as Done" }).click();
      await page.locator("#thread-status").filter({ hasText: "Done" }).waitFor();
      await page.locator("#thread-readonly").filter({ hasText: "read-only" }).waitFor();
      equal(await page.locator("#reply-text").count(), 0, "no composer");
      equal(await page.getByRole("button", { name: "Mark as Done" }).count(), 0, "no Mark as Done");
      await page.locator("#thread-messages .msg-out").filter({ hasText: "Marked as done" }).waitFor();
      await shot(page, "done");
      const refused = await api(stack, people.alice, "POST", `/api/v1/threads/${thread.id}/messages`, { text: "late" }).catch((e) => e);
      equal(refused.status, 409, "writing to a done thread");
      await page.getByRole("link", { name: "Back to the threads" }).click();
      await page.locator(`[data-thread-id="${thread.id}"] .status-done`).waitFor();
    },
  },

  "admin-read-only": {
    title: "an admin sees chats and threads read-only and cannot create threads; the Users tab creates a user",
    async run({ stack, browser, shot, people }) {
      const { chat } = people;
      const thread = await threadViaApi(stack, people.alice, chat, "C0FINANCE", "Was the refund issued?");
      await api(stack, ADMIN_TOKEN, "POST", "/api/v1/sandbox/slack/replies", {
        channel_id: "C0FINANCE", thread_ts: thread.slack_ts, user_name: "Erin", text: "Issued yesterday.",
      });
      const page = await signIn(browser, stack, ADMIN_TOKEN, "Administrator");
      equal(await page.locator("nav.tabs a").allTextContents(), ["Active Chats", "Resolved Chats", "Users"], "an admin's tabs");
      await page.locator(`[data-chat-id="${chat}"]`).click();
      await page.locator("#transcript").getByText("charged twice").waitFor();
      await page.locator("#chat-readonly").filter({ hasText: "read-only" }).waitFor();
      equal(await page.locator("#customer-text").count(), 0, "no customer composer");
      await shot(page, "admin-chat");
      await page.locator("#threads-button").click();
      await page.locator(`[data-thread-id="${thread.id}"]`).waitFor();
      equal(await page.getByRole("link", { name: "+ New thread" }).count(), 0, "no New thread");
      await page.locator(`[data-thread-id="${thread.id}"]`).click();
      await page.locator("#thread-messages").getByText("Issued yesterday.").waitFor();
      equal(await page.locator("#reply-text").count(), 0, "no thread composer");
      equal(await page.getByRole("button", { name: "Mark as Done" }).count(), 0, "no Mark as Done");
      await page.locator("#thread-readonly").filter({ hasText: "Admins see threads read-only." }).waitFor();
      await shot(page, "admin-thread");
      // Reading as an admin does not clear the agent's unread count.
      equal((await api(stack, ADMIN_TOKEN, "GET", `/api/v1/threads/${thread.id}`)).unread, 1, "the agent's unread count");

      // The new-thread form is not there for admins, even by its address.
      await page.goto(chatUrl(stack, "active", chat, "/threads/new"));
      check((await bannerText(page)).includes("admins see threads read-only"), "the refusal in words");
      equal(await page.locator("#new-thread-form").count(), 0, "no new-thread form");
      await shot(page, "admin-no-new-thread");

      await page.getByRole("link", { name: "Users" }).click();
      await page.locator("#user-id").fill("carol");
      await page.locator("#user-name").fill("Carol Agent");
      await page.getByRole("button", { name: "Create user" }).click();
      await page.locator("#new-token").waitFor();
      check((await page.locator("#new-token").textContent()).length >= 40, "the new token is shown once");
      await page.locator("table.users").getByText("Carol Agent").waitFor();
      await shot(page, "users");
    },
  },

  "second-agent-and-transfer": {
    title: "a second agent cannot open the first agent's chat; after a transfer the new agent sees and works its threads",
    async run({ stack, browser, shot, people }) {
      const { chat } = people;
      const thread = await threadViaApi(stack, people.alice, chat, "C0FINANCE", "Refund status for Dana?");
      await api(stack, ADMIN_TOKEN, "POST", "/api/v1/sandbox/slack/replies", {
        channel_id: "C0FINANCE", thread_ts: thread.slack_ts, user_name: "Erin", text: "Processing.",
      });
      const bob = await signIn(browser, stack, people.bob, "Bob Agent");
      await bob.getByText("No chats here.").waitFor();
      await bob.goto(chatUrl(stack, "mine", chat));
      check((await bannerText(bob)).includes(`chat ${chat} is not assigned to you`), "the refusal in words");
      await bob.getByText("This chat cannot be shown").waitFor();
      equal(await bob.locator("#threads-button").count(), 0, "no threads for bob");
      await shot(bob, "bob-refused");

      const alice = await signIn(browser, stack, people.alice, "Alice Agent");
      await alice.goto(chatUrl(stack, "mine", chat));
      await alice.locator("#transfer-to option", { hasText: "Bob Agent (bob)" }).waitFor({ state: "attached" });
      await alice.locator("#transfer-to").selectOption("bob");
      await alice.getByRole("button", { name: "Transfer", exact: true }).click();
      await alice.getByText("No chats here.").waitFor();
      await shot(alice, "alice-after-transfer");

      await bob.goto(stack.base + "/#/mine");
      await bob.getByRole("button", { name: "Refresh My Chats" }).click();
      await bob.locator(`[data-chat-id="${chat}"]`).click();
      await bob.locator("#threads-button").click();
      await bob.locator(`[data-thread-id="${thread.id}"]`).click();
      await bob.locator("#thread-messages").getByText("Processing.").waitFor();
      await bob.locator("#thread-messages").getByText("Refund status for Dana?").waitFor();
      await bob.locator("#reply-text").fill("Taking over from Alice: any news?");
      await bob.locator("#reply-text").press("Enter");
      await bob.locator("#thread-messages .msg-out").filter({ hasText: "Taking over" }).waitFor();
      const last = (await threadMessages(stack, thread.id)).pop();
      equal(last.author.id, "bob", "the reply's author");
      await shot(bob, "bob-works-thread");
    },
  },

  "errors-in-words": {
    title: "errors from the server are shown in words: a file too large, a resolved chat, a server gone",
    stack: { args: ["--max-file-bytes", "2048"] },
    async run({ stack, browser, shot, people }) {
      const { chat } = people;
      const thread = await threadViaApi(stack, people.alice, chat, "C0FINANCE", "Please check invoice 88.");
      const page = await signIn(browser, stack, people.alice, "Alice Agent");
      await page.goto(threadUrl(stack, "mine", chat, thread.id));
      await page.locator("#reply-files").setInputFiles([{ name: "big.pdf", mimeType: "application/pdf", buffer: Buffer.alloc(5000, 65) }]);
      await page.locator("#reply-text").fill("The invoice");
      await page.locator("#reply-composer").getByRole("button", { name: "Send", exact: true }).click();
      const tooLarge = await bannerText(page);
      check(tooLarge.includes("Could not send the reply: file big.pdf is larger than 2048 bytes (413 file_too_large)"), `413 in words: ${tooLarge}`);
      equal(await page.locator("#reply-text").inputValue(), "The invoice", "the text is kept after an error");
      await shot(page, "file-too-large");

      // The chat is resolved elsewhere: the page says why it is read-only.
      await api(stack, people.bot, "POST", `/api/v1/chats/${chat}/resolve`);
      await page.locator("#thread-readonly").filter({ hasText: "The chat is resolved" }).waitFor({ timeout: 15000 });
      await shot(page, "resolved-elsewhere");
      await page.goto(stack.base + "/#/resolved");
      await page.locator(`[data-chat-id="${chat}"]`).click();
      await page.locator("#chat-readonly").filter({ hasText: "resolved" }).waitFor();

      // The server goes away: the next action says so, no blank page.
      await stack.server.stop();
      await page.getByRole("button", { name: "Refresh Resolved Chats" }).click();
      check((await bannerText(page)).includes("the server could not be reached"), "a network failure in words");
      check(await page.locator("#transcript").isVisible(), "the page stays");
      await shot(page, "server-gone");
    },
  },

  "sandbox": {
    title: "in the sandbox the whole flow runs from the page: the simulated workspace's channels, and L2 replies posted from the thread",
    async run({ stack, browser, shot, people }) {
      const { chat } = people;
      const page = await signIn(browser, stack, people.alice, "Alice Agent");
      await page.locator(`[data-chat-id="${chat}"]`).click();
      await page.locator("#threads-button").click();
      await page.getByRole("link", { name: "+ New thread" }).click();
      await page.getByText("the sandbox's simulated workspace").waitFor();
      await page.locator("#thread-to").selectOption("C0HR");
      await page.locator("#new-thread-text").fill("Sandbox question: is Dana's contract renewed?");
      await shot(page, "sandbox-new-thread");
      await page.getByRole("button", { name: "Create thread" }).click();
      const opening = page.locator("#thread-messages .msg-out").first();
      await opening.locator(".delivery-sent").waitFor({ timeout: 15000 });
      await page.getByText("Sandbox: reply as an L2 person in Slack").click();
      await page.locator("#sandbox-name").fill("Hugo (HR)");
      await page.locator("#sandbox-text").fill("Renewed in *March*.");
      await page.getByRole("button", { name: "Post the L2 reply" }).click();
      const reply = page.locator("#thread-messages .msg-in").filter({ hasText: "Renewed in" });
      await reply.waitFor();
      equal(await reply.locator(".msg-body strong").textContent(), "March", "the reply's bold");
      check((await reply.locator(".msg-head").textContent()).includes("Hugo (HR)"), "the reply's author");
      await shot(page, "sandbox-reply");
      // The workspace also pushes the reply back as a Slack event: it is kept once.
      await sleep(1500);
      equal(await page.locator("#thread-messages .msg-in").count(), 1, "replies shown");
    },
  },

  "layouts-and-keyboard": {
    title: "the views fit 1280x800 and a narrow phone screen, and the thread flow works from the keyboard alone",
    async run({ stack, browser, shot, people }) {
      const { chat } = people;
      const thread = await threadViaApi(stack, people.alice, chat, "C0FINANCE", "Refund for order 1234?");
      await api(stack, ADMIN_TOKEN, "POST", "/api/v1/sandbox/slack/replies", {
        channel_id: "C0FINANCE", thread_ts: thread.slack_ts, user_name: "Erin", text: "*Done*, refunded today.",
      });
      const page = await signIn(browser, stack, people.alice, "Alice Agent");
      const fits = () => page.evaluate(() => document.documentElement.scrollWidth <= window.innerWidth);
      const visible = (sel) => page.locator(sel).isVisible();

      // 1280x800: list, chat and threads side by side.
      await page.goto(threadUrl(stack, "mine", chat, thread.id));
      await page.locator("#thread-messages").getByText("refunded today").waitFor();
      check(await visible("#list-pane") && await visible("#chat-pane") && await visible("#threads-pane"), "three panes at 1280");
      check(await fits(), "no horizontal scrolling at 1280");
      await shot(page, "wide-thread");

      // Keyboard only: from the page's start to a sent reply.
      await page.goto(chatUrl(stack, "mine", chat));
      await page.locator("#threads-button").waitFor();
      const tabTo = async (what, test) => {
        for (let i = 0; i < 60; i++) {
          await page.keyboard.press("Tab");
          if (await page.evaluate(test)) return;
        }
        throw new Error(`Tab never reached ${what}`);
      };
      await page.locator("body").click({ position: { x: 1, y: 1 } });
      await tabTo("the threads button", () => document.activeElement?.id === "threads-button");
      await page.keyboard.press("Enter");
      await page.locator("#threads-pane").waitFor();
      await tabTo("the thread", () => document.activeElement?.classList.contains("thread-item"));
      await page.keyboard.press("Enter");
      await page.locator("#reply-text").waitFor();
      await tabTo("the composer", () => document.activeElement?.id === "reply-text");
      await page.keyboard.type("Sent from the keyboard @he");
      await page.locator("#reply-suggestions").getByText("@here").waitFor();
      await page.keyboard.press("Enter");
      await page.keyboard.press("Enter");
      await page.locator("#thread-messages .msg-out").filter({ hasText: "Sent from the keyboard @here" }).waitFor();
      await page.keyboard.press("Escape");
      await page.locator("#threads-pane").waitFor({ state: "hidden" });
      await eventually("focus back on the threads button", () => page.evaluate(() => document.activeElement?.id === "threads-button"));
      await shot(page, "keyboard-done");

      // A phone: one pane at a time, nothing wider than the screen.
      await page.setViewportSize({ width: 390, height: 844 });
      await page.goto(stack.base + "/#/mine");
      await page.locator(`[data-chat-id="${chat}"]`).waitFor();
      check(await visible("#list-pane") && !(await visible("#chat-pane")), "narrow: the list alone");
      check(await fits(), "narrow list fits");
      await shot(page, "narrow-list");
      await page.locator(`[data-chat-id="${chat}"]`).click();
      await page.locator("#transcript").getByText("charged twice").waitFor();
      check(!(await visible("#list-pane")) && await visible("#chat-pane"), "narrow: the chat alone");
      check(await fits(), "narrow chat fits");
      await shot(page, "narrow-chat");
      await page.locator("#threads-button").click();
      await page.locator(`[data-thread-id="${thread.id}"]`).click();
      await page.locator("#thread-messages").getByText("refunded today").waitFor();
      check(!(await visible("#chat-pane")) && await visible("#threads-pane"), "narrow: the thread alone");
      check(await fits(), "narrow thread fits");
      const box = await page.locator("#threads-pane").boundingBox();
      check(box && box.width >= 380, "the thread uses the screen's width");
      await shot(page, "narrow-thread");
      await page.getByRole("link", { name: "Close the threads panel" }).click();
      await page.getByRole("link", { name: "Back to the chat list" }).click();
      await page.locator(`[data-chat-id="${chat}"]`).waitFor();
    },
  },
};

function withTimeout(promise, ms, what) {
  let timer;
  return Promise.race([
    promise,
    new Promise((_, reject) => (timer = setTimeout(() => reject(new Error(`${what} took longer than ${ms} ms`)), ms))),
  ]).finally(() => clearTimeout(timer));
}

async function runScenario(id) {
  const scenario = scenarios[id];
  const artifacts = join(ARTIFACTS, id);
  const shot = camera(artifacts);
  let stack, browser;
  const started = Date.now();
  try {
    stack = await startStack(scenario.stack);
    const people = await cast(stack);
    browser = await openBrowser();
    await withTimeout(scenario.run({ stack, browser, shot, people }), SCENARIO_TIMEOUT_MS, id);
    if (browser.errors.length) throw new Error(`errors in the page: ${browser.errors.join(" | ")}`);
    console.log(`ok    ${id} (${Date.now() - started} ms): ${scenario.title}`);
    return true;
  } catch (e) {
    console.log(`FAIL  ${id} (${Date.now() - started} ms): ${scenario.title}\n      ${e.stack || e}`);
    if (browser) {
      for (const [i, page] of browser.context.pages().entries())
        await shot(page, `failure-page${i}`).catch(() => {});
      if (browser.errors.length) console.log(`      errors in the page: ${browser.errors.join(" | ")}`);
    }
    return false;
  } finally {
    await closeBrowser(browser);
    await stopStack(stack, artifacts);
    console.log(`      screenshots and logs: ${artifacts}`);
  }
}

const arg = process.argv[2];
if (arg === "--list") {
  for (const [id, s] of Object.entries(scenarios)) console.log(`${id}\t${s.title}`);
  process.exit(0);
}
const ids = arg ? [arg] : Object.keys(scenarios);
for (const id of ids)
  if (!scenarios[id]) {
    console.error(`no scenario ${id}; these exist: ${Object.keys(scenarios).join(", ")}`);
    process.exit(2);
  }
let failed = 0;
for (const id of ids) if (!(await runScenario(id))) failed++;
process.exit(failed ? 1 : 0);
