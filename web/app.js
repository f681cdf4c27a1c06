// The backline agent inbox: one page over the HTTP API (shared/api.md).
// Plain modern JavaScript, no build step, no framework: a hash router
// (#/<tab>/<chat>/threads/<thread>), a few render functions that build DOM
// nodes (never HTML strings from data), and the API calls they need.
//
//   #/mine | #/active | #/resolved | #/users        a tab
//   #/mine/<chat id>                               a chat
//   #/mine/<chat id>/threads                       its threads panel
//   #/mine/<chat id>/threads/new                   the new-thread form
//   #/mine/<chat id>/threads/<thread id>           a thread

import * as fmt from "./format.js";

const TOKEN_KEY = "backline.token";
const TABS = {
  mine: { label: "My Chats", view: "mine" },
  active: { label: "Active Chats", view: "active" },
  resolved: { label: "Resolved Chats", view: "resolved" },
  users: { label: "Users" },
};
const EMOJI = ["👍", "👎", "🙏", "🙂", "😀", "😅", "😕", "😮", "🎉", "✅", "❌", "⚠️", "❓", "❗", "👀", "🔥",
  "💰", "💳", "🧾", "📎", "📄", "📅", "⏰", "🚀", "👋", "🤝", "💡", "🛠️", "📞", "✉️", "🔒", "❤️"];

const state = {
  token: sessionStorage.getItem(TOKEN_KEY),
  me: null,
  tab: null,
  chats: [],
  chatId: null,
  chat: null,
  transcript: [],
  threads: [],
  panel: null,        // null | "list" | "new" | "thread"
  threadId: null,
  thread: null,
  messages: [],
  channels: null,     // the To list, once loaded
  sandbox: false,     // no Slack token: Slack is simulated
  mentions: null,     // @-suggestions, once loaded
  agents: null,       // transfer and assign targets
  cursor: "0",
  pollGeneration: 0,
  focusedChat: null,
  timers: [],
  blobs: new Map(),   // file id -> object URL of the fetched bytes
};

// --- small helpers ---------------------------------------------------------------

/// An element: h("button", {class: "x", onclick: f}, "text", child…).
function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith("on") && typeof v === "function") el.addEventListener(k.slice(2), v);
    else if (k === "class") el.className = v;
    else if (k === "dataset") Object.assign(el.dataset, v);
    else if (v === true) el.setAttribute(k, "");
    else el.setAttribute(k, String(v));
  }
  append(el, children);
  return el;
}

/// Replaces an element's children (null, undefined and false are skipped,
/// where the DOM's own replaceChildren would write "null").
function fill(el, ...children) {
  el.replaceChildren();
  return append(el, children);
}

function append(el, children) {
  for (const c of children.flat(Infinity)) {
    if (c === undefined || c === null || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return el;
}

function svgIcon(path, label) {
  const ns = "http://www.w3.org/2000/svg";
  const svg = document.createElementNS(ns, "svg");
  svg.setAttribute("viewBox", "0 0 24 24");
  svg.setAttribute("aria-hidden", "true");
  svg.setAttribute("class", "icon");
  const p = document.createElementNS(ns, "path");
  p.setAttribute("d", path);
  svg.append(p);
  if (label) svg.setAttribute("data-label", label);
  return svg;
}

const ICONS = {
  threads: "M4 4h16v11H8l-4 4zM8 8h8M8 11h5",
  close: "M6 6l12 12M18 6L6 18",
  back: "M15 5l-7 7 7 7",
  attach: "M16.5 6.5l-7.8 7.8a2 2 0 0 0 2.8 2.8l8-8a4 4 0 0 0-5.6-5.6l-8 8a6 6 0 0 0 8.5 8.5l6.6-6.6",
  smile: "M12 3a9 9 0 1 0 0 18 9 9 0 0 0 0-18zM8.5 14.5c1.8 2 5.2 2 7 0M9 9.5h.01M15 9.5h.01",
  lock: "M7 11V8a5 5 0 0 1 10 0v3M5 11h14v10H5z",
  download: "M12 4v11M7 10l5 5 5-5M5 20h14",
};

function byId(id) {
  return document.getElementById(id);
}

function when(iso) {
  if (!iso) return "";
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return iso;
  const today = new Date();
  const sameDay = d.toDateString() === today.toDateString();
  return sameDay
    ? d.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" })
    : d.toLocaleString([], { month: "short", day: "numeric", hour: "2-digit", minute: "2-digit" });
}

function timeEl(iso) {
  return h("time", { datetime: iso, title: iso }, when(iso));
}

function randomKey() {
  const bytes = new Uint8Array(16);
  crypto.getRandomValues(bytes);
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

// --- the API -----------------------------------------------------------------------

class ApiError extends Error {
  constructor(status, body) {
    super(fmt.errorText(status, body));
    this.status = status;
    this.code = body && body.error ? body.error.code : "";
  }
}

/// One API call: JSON or FormData in, JSON out; errors as ApiError in words.
async function api(method, path, { json, form, signal, quiet401 } = {}) {
  const headers = { Authorization: `Bearer ${state.token}` };
  let body;
  if (json !== undefined) {
    headers["Content-Type"] = "application/json";
    body = JSON.stringify(json);
  } else if (form) {
    body = form;
  }
  // A repeat of the same request (a retry) must not act twice.
  if (method === "POST") headers["Idempotency-Key"] = randomKey();
  let res;
  try {
    res = await fetch(path, { method, headers, body, signal, cache: "no-store" });
  } catch (e) {
    if (e.name === "AbortError") throw e;
    throw new ApiError(0, null);
  }
  let data = null;
  if ((res.headers.get("Content-Type") || "").includes("application/json")) data = await res.json().catch(() => null);
  if (!res.ok) {
    const err = new ApiError(res.status, data);
    if (res.status === 401 && !quiet401) signOut(`Signed out: ${err.message}`);
    throw err;
  }
  return data;
}

/// The bytes of a file as an object URL (the API needs the bearer token, so
/// <img src> cannot fetch it by itself). Cached per file id.
async function fileUrl(id) {
  if (state.blobs.has(id)) return state.blobs.get(id);
  const res = await fetch(`/api/v1/files/${encodeURIComponent(id)}`, {
    headers: { Authorization: `Bearer ${state.token}` },
  });
  if (!res.ok) {
    const data = await res.json().catch(() => null);
    throw new ApiError(res.status, data);
  }
  const url = URL.createObjectURL(await res.blob());
  state.blobs.set(id, url);
  return url;
}

// --- errors in words -----------------------------------------------------------------

function showError(context, err) {
  const banner = byId("banner");
  if (!banner) return;
  const text = `${context}: ${err instanceof ApiError ? err.message : err && err.message ? err.message : err}`;
  fill(banner, 
    h("p", {}, text),
    h("button", { type: "button", class: "ghost", "aria-label": "Dismiss", onclick: clearError }, svgIcon(ICONS.close)),
  );
  banner.hidden = false;
}

function clearError() {
  const banner = byId("banner");
  if (banner) {
    banner.hidden = true;
    fill(banner);
  }
}

function showNotice(text) {
  const notice = byId("notice");
  if (!notice) return;
  notice.textContent = text;
  notice.hidden = false;
  clearTimeout(showNotice.timer);
  showNotice.timer = setTimeout(() => (notice.hidden = true), 4000);
}

/// A modal question; resolves true when confirmed.
function confirmDialog(title, text, confirmLabel) {
  return new Promise((resolve) => {
    const dialog = h(
      "dialog",
      { class: "confirm", "aria-labelledby": "confirm-title" },
      h("h2", { id: "confirm-title" }, title),
      h("p", {}, text),
      h(
        "form",
        { method: "dialog", class: "row end" },
        h("button", { value: "cancel", class: "secondary" }, "Cancel"),
        h("button", { value: "ok", class: "primary" }, confirmLabel),
      ),
    );
    dialog.addEventListener("close", () => {
      resolve(dialog.returnValue === "ok");
      dialog.remove();
    });
    document.body.append(dialog);
    dialog.showModal();
  });
}

// --- sign-in ---------------------------------------------------------------------

function renderSignIn(message) {
  stopEverything();
  const input = h("input", {
    id: "token",
    name: "token",
    type: "password",
    autocomplete: "off",
    spellcheck: "false",
    required: true,
    "aria-describedby": "token-help",
  });
  const error = h("p", { class: "form-error", role: "alert", id: "signin-error" }, message || "");
  const form = h(
    "form",
    { class: "card signin", "aria-labelledby": "signin-title" },
    h("div", { class: "brand big" }, "backline"),
    h("h1", { id: "signin-title" }, "Sign in to the inbox"),
    h("label", { for: "token" }, "Access token"),
    input,
    h("p", { id: "token-help", class: "help" }, "Your token is kept for this browser tab only."),
    error,
    h("button", { type: "submit", class: "primary" }, "Sign in"),
  );
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    error.textContent = "";
    state.token = input.value.trim();
    try {
      const me = await api("GET", "/api/v1/me", { quiet401: true });
      if (me.role === "bot") {
        state.token = null;
        error.textContent = "This token belongs to the bot role, which has no inbox page.";
        return;
      }
      sessionStorage.setItem(TOKEN_KEY, state.token);
      state.me = me;
      startApp();
    } catch (err) {
      state.token = null;
      error.textContent =
        err.status === 401 ? "That token is not known to this server." : `Could not sign in: ${err.message}`;
    }
  });
  fill(byId("app"), h("main", { class: "signin-page" }, form));
  input.focus();
}

function signOut(message) {
  sessionStorage.removeItem(TOKEN_KEY);
  leaveChat();
  state.token = null;
  state.me = null;
  state.tab = null;
  state.chatId = null;
  state.channels = state.mentions = state.agents = null;
  for (const url of state.blobs.values()) URL.revokeObjectURL(url);
  state.blobs.clear();
  if (location.hash) history.replaceState(null, "", location.pathname);
  renderSignIn(message);
}

function stopEverything() {
  state.pollGeneration++;
  for (const t of state.timers) clearInterval(t);
  state.timers = [];
}

// --- the shell -----------------------------------------------------------------------

function tabsOf(me) {
  return me.role === "admin" ? ["active", "resolved", "users"] : ["mine", "resolved"];
}

function startApp() {
  stopEverything();
  const me = state.me;
  const nav = h("nav", { class: "tabs", "aria-label": "Views" });
  for (const tab of tabsOf(me)) nav.append(h("a", { href: `#/${tab}`, id: `tab-${tab}` }, TABS[tab].label));
  const header = h(
    "header",
    { class: "topbar" },
    h("div", { class: "brand" }, "backline"),
    nav,
    h(
      "div",
      { class: "who" },
      h("span", { class: "who-name", id: "who" }, `${me.name}`, h("span", { class: "muted" }, ` (${me.id})`)),
      h("span", { class: `role role-${me.role}`, id: "role" }, me.role),
      h("button", { type: "button", class: "secondary small", onclick: () => signOut("Signed out.") }, "Sign out"),
    ),
  );
  const main = h(
    "main",
    { class: "workspace", id: "workspace", dataset: { view: "list" } },
    h("section", { id: "list-pane", class: "pane list-pane", "aria-labelledby": "list-title" }),
    h("section", { id: "chat-pane", class: "pane chat-pane", "aria-label": "Chat" }),
    h("aside", { id: "threads-pane", class: "pane threads-pane", "aria-labelledby": "threads-title", hidden: true }),
  );
  fill(byId("app"), 
    header,
    h("div", { id: "banner", class: "banner", role: "alert", hidden: true }),
    h("div", { id: "notice", class: "notice", role: "status", hidden: true }),
    main,
  );
  if (me.role === "agent") pollNotifications(++state.pollGeneration);
  // The transcript (and for admins the threads) refresh by themselves.
  state.timers.push(setInterval(refreshOpenChat, 4000));
  // An agent's threads come by long poll; this is only a slow safety net.
  state.timers.push(setInterval(() => state.chatId && loadThreads().catch(() => {}), 30000));
  state.timers.push(setInterval(refreshPendingThread, 1500));
  applyRoute();
}

// --- routing ---------------------------------------------------------------------------

function parseRoute() {
  const parts = location.hash.replace(/^#\/?/, "").split("/").filter(Boolean).map(decodeURIComponent);
  const [tab, chatId, threads, threadId] = parts;
  let panel = null;
  if (threads === "threads") panel = threadId === "new" ? "new" : threadId ? "thread" : "list";
  return { tab, chatId: chatId || null, panel, threadId: panel === "thread" ? threadId : null };
}

function hashOf(tab, chatId, panel, threadId) {
  let hash = `#/${tab}`;
  if (chatId) hash += `/${encodeURIComponent(chatId)}`;
  if (chatId && panel) hash += "/threads";
  if (chatId && panel === "new") hash += "/new";
  if (chatId && panel === "thread" && threadId) hash += `/${encodeURIComponent(threadId)}`;
  return hash;
}

function go(chatId, panel, threadId, tab = state.tab) {
  location.hash = hashOf(tab, chatId, panel, threadId);
}

let routing = Promise.resolve();
window.addEventListener("hashchange", () => state.me && applyRoute());

function applyRoute() {
  // One route at a time, in order.
  routing = routing.then(applyRouteNow).catch((err) => showError("Could not open that view", err));
  return routing;
}

async function applyRouteNow() {
  const r = parseRoute();
  const tabs = tabsOf(state.me);
  if (!tabs.includes(r.tab)) {
    history.replaceState(null, "", hashOf(tabs[0]));
    return applyRouteNow();
  }
  clearError();
  if (r.tab !== state.tab) {
    state.tab = r.tab;
    for (const t of tabs) {
      const link = byId(`tab-${t}`);
      if (t === r.tab) link.setAttribute("aria-current", "page");
      else link.removeAttribute("aria-current");
    }
    state.chatId = null;
    leaveChat();
    renderListPane();
    if (r.tab === "users") await loadUsers();
    else await loadChats();
  }
  if (r.tab === "users") {
    setView("list");
    return;
  }
  if (r.chatId !== state.chatId) await openChat(r.chatId);
  if (!state.chat) {
    setView("list");
    setPanel(null);
    return;
  }
  await setPanel(r.panel, r.threadId);
}

/// Which pane a narrow screen shows: the list, the chat or the threads panel.
function setView(view) {
  const ws = byId("workspace");
  if (ws) ws.dataset.view = view;
}

// --- the chat list ---------------------------------------------------------------------

function renderListPane() {
  const pane = byId("list-pane");
  const tab = TABS[state.tab];
  if (state.tab === "users") {
    fill(pane, h("h2", { id: "list-title" }, "Users"), h("div", { id: "users-view" }));
    fill(byId("chat-pane"));
    byId("threads-pane").hidden = true;
    byId("workspace").classList.add("users-mode");
    return;
  }
  byId("workspace").classList.remove("users-mode");
  fill(pane, 
    h("div", { class: "pane-head" }, h("h2", { id: "list-title" }, tab.label),
      h("button", { type: "button", class: "ghost small", onclick: () => loadChats(), "aria-label": `Refresh ${tab.label}` }, "Refresh")),
    h("ul", { class: "chat-list", id: "chat-list", "aria-labelledby": "list-title" }),
  );
  fill(byId("chat-pane"), emptyChat());
}

function emptyChat() {
  const hint =
    state.tab === "mine"
      ? "Chats assigned to you appear here. Pick one to see its transcript and internal threads."
      : state.tab === "active"
        ? "Every open chat, read-only. Pick one to see its transcript and threads."
        : "Resolved chats, read-only.";
  return h("div", { class: "empty" }, h("p", {}, hint));
}

async function loadChats() {
  try {
    const data = await api("GET", `/api/v1/chats?view=${TABS[state.tab].view}`);
    state.chats = data.chats.sort((a, b) => (b.created_at || "").localeCompare(a.created_at || ""));
    renderChatList();
  } catch (err) {
    showError(`Could not load ${TABS[state.tab].label}`, err);
  }
}

function renderChatList() {
  const list = byId("chat-list");
  if (!list) return;
  if (!state.chats.length) {
    fill(list, h("li", { class: "muted empty-item" }, "No chats here."));
    return;
  }
  fill(list, 
    ...state.chats.map((c) =>
      h(
        "li",
        {},
        h(
          "a",
          {
            href: hashOf(state.tab, c.id),
            class: "chat-item",
            "aria-current": c.id === state.chatId ? "true" : null,
            dataset: { chatId: c.id },
          },
          h("span", { class: "chat-item-name" }, c.customer?.name || c.customer?.id || c.id),
          h("span", { class: `status status-${c.status}` }, c.status === "open" ? "Open" : "Resolved"),
          h(
            "span",
            { class: "chat-item-meta" },
            `${c.id}`,
            c.agent_id ? ` · ${c.agent_id}` : " · unassigned",
            c.thread_count ? ` · ${c.thread_count} thread${c.thread_count > 1 ? "s" : ""}` : "",
          ),
        ),
      ),
    ),
  );
}

// --- a chat ----------------------------------------------------------------------------

function leaveChat() {
  unfocus();
  state.chat = null;
  state.transcript = [];
  state.threads = [];
  state.thread = null;
  state.threadId = null;
  state.messages = [];
  state.panel = null;
}

function focusChat(chat) {
  if (state.me.role !== "agent" || chat.agent_id !== state.me.id || chat.status !== "open") return;
  state.focusedChat = chat.id;
  api("PUT", `/api/v1/chats/${encodeURIComponent(chat.id)}/focus`).catch(() => {});
}

function unfocus() {
  const id = state.focusedChat;
  state.focusedChat = null;
  if (!id || !state.token) return;
  fetch(`/api/v1/chats/${encodeURIComponent(id)}/focus`, {
    method: "DELETE",
    headers: { Authorization: `Bearer ${state.token}` },
    keepalive: true,
  }).catch(() => {});
}
window.addEventListener("pagehide", unfocus);

function canReadThreads(chat = state.chat) {
  const me = state.me;
  if (!chat) return false;
  return me.role === "admin" || (me.role === "agent" && me.inbox_access && chat.agent_id === me.id);
}

function canWorkThreads(chat = state.chat) {
  const me = state.me;
  return !!chat && me.role === "agent" && me.inbox_access && chat.agent_id === me.id && chat.status === "open";
}

async function openChat(chatId) {
  leaveChat();
  state.chatId = chatId;
  renderChatList();
  if (!chatId) {
    fill(byId("chat-pane"), emptyChat());
    return;
  }
  const pane = byId("chat-pane");
  fill(pane, h("p", { class: "empty muted" }, "Loading the chat…"));
  try {
    const id = encodeURIComponent(chatId);
    const [chat, messages] = await Promise.all([
      api("GET", `/api/v1/chats/${id}`),
      api("GET", `/api/v1/chats/${id}/messages`),
    ]);
    if (state.chatId !== chatId) return;
    state.chat = chat;
    state.transcript = messages.messages;
  } catch (err) {
    if (state.chatId !== chatId) return;
    fill(pane, 
      h("div", { class: "empty" }, h("h2", {}, "This chat cannot be shown"), h("p", { class: "error-text" }, err.message)),
    );
    showError(`Could not open chat ${chatId}`, err);
    setView("chat");
    return;
  }
  renderChat();
  setView("chat");
  focusChat(state.chat);
  if (canReadThreads()) await loadThreads();
}

function renderChat() {
  const c = state.chat;
  const me = state.me;
  const pane = byId("chat-pane");
  const threadsButton = canReadThreads()
    ? h(
        "button",
        {
          type: "button",
          class: "threads-button",
          id: "threads-button",
          "aria-expanded": state.panel ? "true" : "false",
          "aria-controls": "threads-pane",
          onclick: () => (state.panel ? go(c.id, null) : go(c.id, "list")),
        },
        svgIcon(ICONS.threads),
        h("span", { class: "threads-button-label" }, "Threads"),
        h("span", { class: "bubble", id: "unread-bubble", hidden: true }),
      )
    : null;
  const header = h(
    "div",
    { class: "chat-header" },
    h(
      "a",
      { class: "back-link narrow-only", href: hashOf(state.tab), "aria-label": "Back to the chat list" },
      svgIcon(ICONS.back),
    ),
    h(
      "div",
      { class: "chat-title" },
      h("h2", { id: "chat-title" }, c.customer?.name || c.customer?.id),
      h(
        "p",
        { class: "meta" },
        h("span", { class: `status status-${c.status}` }, c.status === "open" ? "Open" : "Resolved"),
        ` Customer ${c.customer?.id} · Chat ${c.id} · `,
        c.agent_id ? `Agent ${c.agent_id}` : "Unassigned",
        c.previous_chat_id ? ` · Follows ${c.previous_chat_id}` : "",
      ),
    ),
    threadsButton,
  );
  fill(pane, 
    header,
    renderChatActions(),
    h("ol", { class: "transcript", id: "transcript", "aria-label": "Transcript", tabindex: "0" }),
    me.role === "agent" && c.agent_id === me.id && c.status === "open" ? customerComposer() : readOnlyNote(),
  );
  renderTranscript(true);
  renderBubble();
}

function readOnlyNote() {
  const c = state.chat;
  const text =
    c.status === "resolved"
      ? "This chat is resolved: its transcript and threads are read-only."
      : state.me.role === "admin"
        ? "Admins see chats and threads read-only."
        : "This chat is not assigned to you.";
  return h("p", { class: "readonly-note", id: "chat-readonly" }, svgIcon(ICONS.lock), text);
}

function agentSelect(id, label, exclude) {
  const select = h("select", { id, "aria-label": label });
  select.append(h("option", { value: "" }, "Choose an agent…"));
  for (const a of state.agents || [])
    if (a.role === "agent" && a.id !== exclude) select.append(h("option", { value: a.id }, `${a.name} (${a.id})`));
  return select;
}

function renderChatActions() {
  const c = state.chat;
  const me = state.me;
  const bar = h("div", { class: "chat-actions", id: "chat-actions" });
  const isOwner = me.role === "agent" && c.agent_id === me.id;
  if (c.status === "open" && (isOwner || me.role === "admin")) {
    const verb = !c.agent_id && me.role === "admin" ? "assign" : "transfer";
    const select = agentSelect("transfer-to", verb === "assign" ? "Assign to" : "Transfer to", c.agent_id);
    const button = h("button", { type: "button", class: "secondary small" }, verb === "assign" ? "Assign" : "Transfer");
    button.addEventListener("click", async () => {
      if (!select.value) {
        showError(verb === "assign" ? "Could not assign" : "Could not transfer", "choose an agent first");
        select.focus();
        return;
      }
      try {
        const chat = await api("POST", `/api/v1/chats/${encodeURIComponent(c.id)}/${verb}`, {
          json: { agent_id: select.value },
        });
        showNotice(`Chat ${chat.id} ${verb === "assign" ? "assigned" : "transferred"} to ${chat.agent_id}.`);
        await afterChatChange(chat);
      } catch (err) {
        showError(verb === "assign" ? "Could not assign the chat" : "Could not transfer the chat", err);
      }
    });
    bar.append(h("label", { for: "transfer-to", class: "inline-label" }, verb === "assign" ? "Assign to" : "Transfer to"), select, button);
    const resolve = h("button", { type: "button", class: "secondary small", id: "resolve-chat" }, "Resolve chat");
    resolve.addEventListener("click", async () => {
      const ok = await confirmDialog(
        "Resolve this chat?",
        "The chat moves to Resolved Chats and its open threads become read-only.",
        "Resolve chat",
      );
      if (!ok) return;
      try {
        const chat = await api("POST", `/api/v1/chats/${encodeURIComponent(c.id)}/resolve`);
        showNotice(`Chat ${chat.id} resolved.`);
        await afterChatChange(chat);
      } catch (err) {
        showError("Could not resolve the chat", err);
      }
    });
    bar.append(h("span", { class: "spacer" }), resolve);
    if (!state.agents) loadAgents().then(() => state.chat === c && refreshActions());
  }
  if (c.status === "resolved" && me.role === "admin") {
    const reopen = h("button", { type: "button", class: "secondary small", id: "reopen-chat" }, "Reopen as a new chat");
    reopen.addEventListener("click", async () => {
      try {
        const chat = await api("POST", `/api/v1/chats/${encodeURIComponent(c.id)}/reopen`);
        showNotice(`Chat ${chat.id} opened after ${c.id}.`);
        location.hash = hashOf("active", chat.id);
      } catch (err) {
        showError("Could not reopen the chat", err);
      }
    });
    bar.append(reopen);
  }
  return bar.childElementCount ? bar : null;
}

function refreshActions() {
  const old = byId("chat-actions");
  const fresh = renderChatActions();
  if (old && fresh) old.replaceWith(fresh);
}

async function afterChatChange(chat) {
  await loadChats();
  const stillHere = state.chats.some((c) => c.id === chat.id);
  if (!stillHere) {
    go(null, null);
    return;
  }
  state.chat = chat;
  renderChat();
  if (canReadThreads()) await loadThreads();
  if (state.panel) renderPanel();
}

async function loadAgents() {
  try {
    state.agents = (await api("GET", "/api/v1/users")).users;
  } catch (err) {
    state.agents = [];
    showError("Could not load the agents", err);
  }
}

function renderTranscript(scrollToEnd) {
  const list = byId("transcript");
  if (!list) return;
  const atEnd = scrollToEnd || list.scrollHeight - list.scrollTop - list.clientHeight < 40;
  if (!state.transcript.length) {
    fill(list, h("li", { class: "muted empty-item" }, "No messages yet."));
    return;
  }
  fill(list, 
    ...state.transcript.map((m) => {
      const note = m.kind === "internal_note";
      const who = m.kind === "customer" ? state.chat.customer?.name || m.author : m.kind === "bot" ? "Bot" : m.author;
      return h(
        "li",
        { class: `msg msg-${m.kind}`, dataset: { kind: m.kind } },
        h(
          "div",
          { class: "msg-head" },
          note ? h("span", { class: "tag tag-internal" }, svgIcon(ICONS.lock), "Internal note") : h("strong", {}, who),
          note ? h("span", { class: "muted" }, ` ${m.author}`) : null,
          " ",
          timeEl(m.created_at),
        ),
        h("div", { class: "msg-body" }, m.text),
      );
    }),
  );
  if (atEnd) list.scrollTop = list.scrollHeight;
}

function customerComposer() {
  const text = h("textarea", { id: "customer-text", rows: "2", placeholder: "Write to the customer…", "aria-label": "Reply to the customer" });
  const send = h("button", { type: "submit", class: "primary", "aria-label": "Send to customer" },
    "Send", h("span", { class: "wide-only" }, " to customer"));
  const form = h("form", { class: "customer-composer", "aria-label": "Reply to the customer" }, text, send);
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    if (!text.value.trim()) return;
    send.disabled = true;
    try {
      await api("POST", `/api/v1/chats/${encodeURIComponent(state.chat.id)}/messages`, { json: { text: text.value } });
      text.value = "";
      await refreshTranscript(true);
    } catch (err) {
      showError("Could not send to the customer", err);
    } finally {
      send.disabled = false;
    }
  });
  text.addEventListener("keydown", (e) => {
    if (e.key === "Enter" && !e.shiftKey && !e.isComposing) {
      e.preventDefault();
      form.requestSubmit();
    }
  });
  return form;
}

async function refreshTranscript(scrollToEnd) {
  const chat = state.chat;
  if (!chat) return;
  const id = encodeURIComponent(chat.id);
  const [fresh, messages] = await Promise.all([api("GET", `/api/v1/chats/${id}`), api("GET", `/api/v1/chats/${id}/messages`)]);
  if (state.chat !== chat) return;
  const changedChat = JSON.stringify(fresh) !== JSON.stringify(chat);
  const changedMessages = messages.messages.length !== state.transcript.length;
  state.transcript = messages.messages;
  if (changedChat) {
    state.chat = fresh;
    // Transferred away, resolved elsewhere: the view follows.
    renderChat();
    if (state.panel) renderPanel();
  } else if (changedMessages || scrollToEnd) {
    renderTranscript(scrollToEnd);
  }
}

async function refreshOpenChat() {
  if (!state.chat || document.hidden) return;
  try {
    await refreshTranscript(false);
    // Admins get no notifications: their threads refresh here. The open
    // thread refreshes for everyone (Slack edits and deletes notify nobody).
    if (state.me.role === "admin" && canReadThreads()) await loadThreads();
    if (state.panel === "thread" && canReadThreads()) await loadMessages(false);
  } catch (err) {
    if (err.status === 403 || err.status === 404) {
      showError("This chat is no longer yours to see", err);
      await loadChats();
    }
  }
}

// --- threads -----------------------------------------------------------------------------

async function loadThreads() {
  const chat = state.chat;
  if (!chat || !canReadThreads(chat)) return;
  const data = await api("GET", `/api/v1/chats/${encodeURIComponent(chat.id)}/threads`);
  if (state.chat !== chat) return;
  state.threads = data.threads;
  if (state.threadId) {
    const t = state.threads.find((x) => x.id === state.threadId);
    if (t) state.thread = t;
  }
  renderBubble();
  if (state.panel === "list") renderThreadList();
  if (state.panel === "thread") renderThreadHeader();
}

function renderBubble() {
  const bubble = byId("unread-bubble");
  const button = byId("threads-button");
  if (!bubble || !button) return;
  const unread = fmt.unreadTotal(state.threads);
  bubble.textContent = unread > 99 ? "99+" : String(unread);
  bubble.hidden = unread === 0;
  button.setAttribute(
    "aria-label",
    `Internal threads: ${state.threads.length}, ${unread} unread`,
  );
  button.setAttribute("aria-expanded", state.panel ? "true" : "false");
}

async function loadChannels(force) {
  if (state.channels && !force) return state.channels;
  const data = await api("GET", "/api/v1/slack/channels");
  state.channels = data.channels;
  state.sandbox = !!data.sandbox;
  return state.channels;
}

async function loadMentions() {
  if (state.mentions) return state.mentions;
  try {
    state.mentions = (await api("GET", "/api/v1/slack/mentions")).mentions;
  } catch {
    // Without Slack's lists the composer still offers @here and @channel.
    state.mentions = [
      { kind: "special", handle: "here", name: "everyone active in the channel" },
      { kind: "special", handle: "channel", name: "everyone in the channel" },
    ];
  }
  return state.mentions;
}

async function setPanel(panel, threadId) {
  const pane = byId("threads-pane");
  if (panel && !canReadThreads()) {
    showError("Threads", state.me.role === "agent" && !state.me.inbox_access
      ? "internal threads need inbox access"
      : "you cannot see this chat's threads");
    panel = null;
  }
  if (panel === "new" && !canWorkThreads()) {
    showError("New thread", state.me.role === "admin" ? "admins see threads read-only" : "this chat's threads are read-only");
    panel = "list";
  }
  const previous = state.panel;
  const previousThread = state.threadId;
  state.panel = panel;
  state.threadId = panel === "thread" ? threadId : null;
  pane.hidden = !panel;
  byId("workspace").classList.toggle("with-panel", !!panel);
  setView(panel ? "panel" : state.chat ? "chat" : "list");
  renderBubble();
  if (!panel) {
    fill(pane);
    if (previous) byId("threads-button")?.focus();
    return;
  }
  if (panel === "thread") {
    if (previous !== "thread" || previousThread !== threadId) {
      state.thread = state.threads.find((t) => t.id === threadId) || null;
      state.messages = [];
      renderThreadView();
      await loadThread(threadId);
    }
  } else if (panel === "new") {
    await renderNewThread();
  } else {
    renderThreadList();
    if (previous !== "list") byId("threads-title")?.focus();
  }
}

function renderPanel() {
  if (state.panel === "list") renderThreadList();
  else if (state.panel === "thread") renderThreadView();
  else if (state.panel === "new") renderNewThread();
}

function panelHeader(title, backTo) {
  const c = state.chat;
  return h(
    "div",
    { class: "panel-head" },
    backTo
      ? h("a", { href: backTo, class: "icon-button", "aria-label": "Back to the threads" }, svgIcon(ICONS.back))
      : null,
    h("h2", { id: "threads-title", tabindex: "-1" }, title),
    h("a", { href: hashOf(state.tab, c.id), class: "icon-button", "aria-label": "Close the threads panel" }, svgIcon(ICONS.close)),
  );
}

function renderThreadList() {
  const pane = byId("threads-pane");
  const c = state.chat;
  const items = state.threads.map((t) =>
    h(
      "li",
      {},
      h(
        "a",
        { href: hashOf(state.tab, c.id, "thread", t.id), class: "thread-item", dataset: { threadId: t.id } },
        h("span", { class: "thread-item-title" }, fmt.threadTitle(t)),
        h(
          "span",
          { class: "thread-item-meta" },
          h("span", { class: "channel" }, fmt.channelLabel(state.channels, t.channel_id)),
          h("span", { class: `status status-${t.status}` }, t.status === "done" ? "Done" : "Open"),
          timeEl(t.created_at),
        ),
        t.unread ? h("span", { class: "count", "aria-label": `${t.unread} unread` }, String(t.unread)) : null,
      ),
    ),
  );
  fill(pane, 
    panelHeader("Internal threads"),
    canWorkThreads()
      ? h("a", { href: hashOf(state.tab, c.id, "new"), class: "button primary new-thread", id: "new-thread" }, "+ New thread")
      : h("p", { class: "readonly-note" }, svgIcon(ICONS.lock),
          state.me.role === "admin" ? "Admins see threads read-only." : "This chat's threads are read-only."),
    items.length
      ? h("ul", { class: "thread-list", id: "thread-list" }, items)
      : h("p", { class: "empty muted" }, "No internal threads yet."),
  );
  // Channel names come with the To list; threads show ids until it is here.
  if (!state.channels) loadChannels().then(() => state.panel === "list" && renderThreadList()).catch(() => {});
}

// --- new thread --------------------------------------------------------------------------

async function renderNewThread() {
  const pane = byId("threads-pane");
  const c = state.chat;
  const me = state.me;
  const select = h("select", { id: "thread-to", name: "channel_id", required: true, "aria-describedby": "to-help" });
  const toHelp = h("p", { class: "help", id: "to-help" }, "Loading the Slack channels…");
  const composer = makeComposer({
    id: "new-thread",
    label: "Query",
    placeholder: "What do you need from the team? @ to mention",
    submitLabel: "Create thread",
    requireText: true,
    onSend: async ({ text, files }) => {
      if (!select.value) throw new Error("choose a channel in To");
      const path = `/api/v1/chats/${encodeURIComponent(c.id)}/threads`;
      let thread;
      if (files.length) {
        const form = new FormData();
        form.append("channel_id", select.value);
        form.append("text", text);
        for (const f of files) form.append("files", f, f.name);
        thread = await api("POST", path, { form });
      } else {
        thread = await api("POST", path, { json: { channel_id: select.value, text } });
      }
      showNotice(`Thread opened in ${fmt.channelLabel(state.channels, thread.channel_id)}.`);
      await loadThreads();
      refreshTranscript(true).catch(() => {});
      go(c.id, "thread", thread.id);
    },
    errorContext: "Could not create the thread",
  });
  fill(pane, 
    panelHeader("New thread", hashOf(state.tab, c.id, "list")),
    h(
      "div",
      { class: "new-thread-form", id: "new-thread-form" },
      h("label", { for: "thread-to" }, "To"),
      select,
      toHelp,
      h(
        "dl",
        { class: "details" },
        h("dt", {}, "From"),
        h("dd", { id: "thread-from" }, `${me.name} (${me.id})`),
        h("dt", {}, "Chat"),
        h("dd", { id: "thread-chat" }, `${c.id} · customer ${c.customer?.name} (${c.customer?.id})`),
      ),
      h("p", { class: "help" }, "Slack gets the chat details and your id and name, then the query."),
      composer.element,
    ),
  );
  byId("threads-title")?.focus();
  try {
    const channels = await loadChannels(true);
    fill(select, h("option", { value: "" }, "Choose a channel…"));
    for (const ch of channels)
      select.append(
        h(
          "option",
          { value: ch.id, disabled: !ch.available, title: ch.reason || null },
          ch.available ? `#${ch.name}` : `#${ch.name} — unavailable: ${ch.reason || "Slack refuses it"}`,
        ),
      );
    toHelp.textContent = channels.length
      ? `The Slack channels the app is in${state.sandbox ? " (the sandbox's simulated workspace)" : ""}. ` +
        "Greyed ones cannot take new threads."
      : "The Slack app is in no channel yet: invite it to a channel first.";
  } catch (err) {
    toHelp.textContent = `Could not load the Slack channels: ${err.message}`;
    toHelp.classList.add("error-text");
  }
  select.focus();
}

// --- a thread ----------------------------------------------------------------------------

function threadWritable() {
  return canWorkThreads() && state.thread && state.thread.status === "open";
}

function renderThreadView() {
  const pane = byId("threads-pane");
  const c = state.chat;
  fill(pane, 
    panelHeader(state.thread ? fmt.threadTitle(state.thread) : "Thread", hashOf(state.tab, c.id, "list")),
    h("div", { class: "thread-meta", id: "thread-meta" }),
    h("ol", { class: "thread-messages", id: "thread-messages", "aria-label": "Thread messages", tabindex: "0" }),
    h("div", { id: "thread-footer" }),
  );
  renderThreadHeader();
  renderThreadMessages(true);
}

function renderThreadHeader() {
  const meta = byId("thread-meta");
  const t = state.thread;
  if (!meta || !t) return;
  const title = byId("threads-title");
  if (title) title.textContent = fmt.threadTitle(t);
  const done = h("button", { type: "button", class: "secondary small", id: "mark-done" }, "Mark as Done");
  done.addEventListener("click", markDone);
  fill(meta, 
    h("span", { class: "channel" }, fmt.channelLabel(state.channels, t.channel_id)),
    h("span", { class: `status status-${t.status}`, id: "thread-status" }, t.status === "done" ? "Done" : "Open"),
    h("span", { class: "muted" }, "opened by ", t.created_by, " ", timeEl(t.created_at)),
    h("span", { class: "spacer" }),
    threadWritable() ? done : null,
  );
  const footer = byId("thread-footer");
  if (!footer) return;
  const writable = threadWritable();
  const existing = footer.querySelector("form.composer");
  if (writable && existing) {
    // The channel's name may have come since the composer was made.
    const where = `Reply in ${fmt.channelLabel(state.channels, t.channel_id)}`;
    existing.querySelector(".composer-label").textContent = where;
    existing.setAttribute("aria-label", where);
    existing.querySelector("textarea").placeholder = `${where} — @ to mention`;
  } else if (writable) {
    const composer = makeComposer({
      id: "reply",
      label: `Reply in ${fmt.channelLabel(state.channels, t.channel_id)}`,
      placeholder: `Reply in ${fmt.channelLabel(state.channels, t.channel_id)} — @ to mention`,
      submitLabel: "Send",
      onSend: sendReply,
      errorContext: "Could not send the reply",
    });
    fill(footer, composer.element);
  } else if (!writable) {
    const why =
      t.status === "done"
        ? "This thread is done: it is read-only, here and in Slack."
        : state.me.role === "admin"
          ? "Admins see threads read-only."
          : state.chat.status === "resolved"
            ? "The chat is resolved: its threads are read-only."
            : "This thread is read-only for you.";
    const note = footer.querySelector("#thread-readonly");
    if (!note || note.textContent !== why || existing)
      fill(footer, h("p", { class: "readonly-note", id: "thread-readonly" }, svgIcon(ICONS.lock), why));
  }
  if (state.sandbox && t.slack_ts && !byId("sandbox-reply")) footer.prepend(sandboxReplyBox(t));
}

/// Sandbox only (no Slack token): post a reply as an L2 person would in Slack.
function sandboxReplyBox(t) {
  const name = h("input", { id: "sandbox-name", value: "Erin (Finance)", autocomplete: "off" });
  const text = h("textarea", { id: "sandbox-text", rows: "2", placeholder: "What the L2 person answers in Slack" });
  const form = h(
    "form",
    { class: "sandbox-form" },
    h("label", { for: "sandbox-name" }, "Name"), name,
    h("label", { for: "sandbox-text" }, "Reply"), text,
    h("button", { type: "submit", class: "secondary small" }, "Post the L2 reply"),
  );
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    if (!text.value.trim()) return;
    try {
      await api("POST", "/api/v1/sandbox/slack/replies", {
        json: { channel_id: t.channel_id, thread_ts: t.slack_ts, user_name: name.value || "L2", text: text.value },
      });
      text.value = "";
      await loadMessages(true);
      await loadThreads();
    } catch (err) {
      showError("Could not post the sandbox reply", err);
    }
  });
  return h(
    "details",
    { class: "sandbox", id: "sandbox-reply" },
    h("summary", {}, "Sandbox: reply as an L2 person in Slack"),
    form,
  );
}

async function loadThread(threadId) {
  try {
    const id = encodeURIComponent(threadId);
    const [thread, messages] = await Promise.all([
      api("GET", `/api/v1/threads/${id}`),
      api("GET", `/api/v1/threads/${id}/messages`),
    ]);
    if (state.threadId !== threadId) return;
    state.thread = thread;
    state.messages = messages.messages;
    // Reading the thread cleared its unread count (for its agent).
    if (state.me.role === "agent") {
      const listed = state.threads.find((t) => t.id === threadId);
      if (listed) listed.unread = 0;
    }
    renderBubble();
    renderThreadHeader();
    renderThreadMessages(true);
    if (!state.channels) loadChannels().then(() => state.threadId === threadId && renderThreadHeader()).catch(() => {});
  } catch (err) {
    showError(`Could not open thread ${threadId}`, err);
    const list = byId("thread-messages");
    if (list) fill(list, h("li", { class: "error-text" }, err.message));
  }
}

async function loadMessages(scrollToEnd) {
  const threadId = state.threadId;
  if (!threadId) return;
  const data = await api("GET", `/api/v1/threads/${encodeURIComponent(threadId)}/messages`);
  if (state.threadId !== threadId) return;
  const before = JSON.stringify(state.messages);
  state.messages = data.messages;
  if (state.me.role === "agent") {
    const listed = state.threads.find((t) => t.id === threadId);
    if (listed) listed.unread = 0;
    renderBubble();
  }
  if (JSON.stringify(state.messages) !== before) renderThreadMessages(scrollToEnd);
}

async function refreshPendingThread() {
  if (state.panel !== "thread" || document.hidden) return;
  // The thread has its Slack ts once its opening message is in Slack (the
  // sandbox's reply form needs it): the thread is read again then, not only
  // its messages, however the two reads of loadThread fell.
  const parentTsMissing = () => state.thread && !state.thread.slack_ts && state.messages[0]?.delivery === "sent";
  const pending = state.messages.some((m) => m.delivery === "pending");
  if (!pending && !parentTsMissing()) return;
  try {
    if (pending) await loadMessages(false);
    const t = state.thread;
    if (parentTsMissing()) {
      const thread = await api("GET", `/api/v1/threads/${encodeURIComponent(t.id)}`);
      if (state.threadId !== thread.id) return;
      state.thread = thread;
      renderThreadHeader();
    }
  } catch {
    // The next tick tries again; errors show when the person acts.
  }
}

function renderThreadMessages(scrollToEnd) {
  const list = byId("thread-messages");
  if (!list) return;
  const atEnd = scrollToEnd || list.scrollHeight - list.scrollTop - list.clientHeight < 40;
  if (!state.messages.length) {
    fill(list, h("li", { class: "muted empty-item" }, "Loading…"));
    return;
  }
  fill(list, state.messages.map(renderThreadMessage));
  if (atEnd) list.scrollTop = list.scrollHeight;
}

function renderThreadMessage(m) {
  const out = m.direction === "to_slack";
  const head = h(
    "div",
    { class: "msg-head" },
    h("strong", {}, m.author?.name || m.author?.id || (out ? "You" : "Slack")),
    h("span", { class: "direction" }, out ? " → Slack" : " in Slack"),
    " ",
    timeEl(m.created_at),
    m.edited_at && !m.deleted ? h("span", { class: "tag tag-edited", title: `Edited in Slack ${m.edited_at}` }, "edited") : null,
    m.late ? h("span", { class: "tag tag-late", title: "Arrived after the thread was done" }, "after done") : null,
  );
  const body = m.deleted
    ? h("div", { class: "msg-body deleted" }, "This message was deleted in Slack.")
    : h("div", { class: "msg-body rich" }, renderMarkdown(m.markdown ?? m.text));
  const files = (m.files || []).length ? h("div", { class: "files" }, m.files.map(renderFile)) : null;
  const delivery = out && m.delivery
    ? h("div", { class: `delivery delivery-${m.delivery}`, role: m.delivery === "failed" ? "status" : null }, fmt.deliveryText(m))
    : null;
  return h(
    "li",
    { class: `msg ${out ? "msg-out" : "msg-in"}${m.deleted ? " msg-deleted" : ""}`, dataset: { messageId: m.id, direction: m.direction } },
    head,
    body,
    files,
    delivery,
  );
}

function renderFile(f) {
  const isImage = (f.mimetype || "").startsWith("image/");
  const label = `${f.name} (${fmt.formatBytes(f.size)})`;
  const download = h(
    "button",
    { type: "button", class: "file-download", "aria-label": `Download ${label}` },
    svgIcon(ICONS.download),
    label,
  );
  download.addEventListener("click", async () => {
    try {
      const url = await fileUrl(f.id);
      const a = h("a", { href: url, download: f.name, hidden: true });
      document.body.append(a);
      a.click();
      a.remove();
    } catch (err) {
      showError(`Could not download ${f.name}`, err);
    }
  });
  if (!isImage) return h("div", { class: "file" }, download);
  const img = h("img", { alt: f.name, class: "preview", loading: "lazy" });
  fileUrl(f.id)
    .then((url) => (img.src = url))
    .catch((err) => img.replaceWith(h("span", { class: "error-text" }, `Image ${f.name} could not be loaded: ${err.message}`)));
  return h("figure", { class: "file image" }, img, h("figcaption", {}, download));
}

/// Markdown (the API's `markdown` field) as elements, never as HTML.
function renderMarkdown(md) {
  const frag = document.createDocumentFragment();
  for (const block of fmt.parseMarkdown(md)) frag.append(renderBlock(block));
  return frag;
}

function renderBlock(b) {
  if (b.t === "pre") return h("pre", {}, h("code", {}, b.v));
  if (b.t === "quote") {
    const q = h("blockquote", {});
    for (const inner of b.blocks) q.append(renderBlock(inner));
    return q;
  }
  const p = h("p", {});
  b.lines.forEach((line, i) => {
    if (i) p.append(h("br"));
    for (const node of line) p.append(renderInline(node));
  });
  return p;
}

function renderInline(n) {
  switch (n.t) {
    case "text":
      return document.createTextNode(n.v);
    case "code":
      return h("code", {}, n.v);
    case "link":
      return h("a", { href: n.href, target: "_blank", rel: "noopener noreferrer" }, n.c.map(renderInline));
    case "strong":
    case "em":
    case "del":
    case "span":
      return h(n.t, {}, n.c.map(renderInline));
    default:
      return document.createTextNode("");
  }
}

async function sendReply({ text, files }) {
  const t = state.thread;
  const path = `/api/v1/threads/${encodeURIComponent(t.id)}/messages`;
  let message;
  if (files.length) {
    const form = new FormData();
    form.append("text", text);
    for (const f of files) form.append("files", f, f.name);
    message = await api("POST", path, { form });
  } else {
    message = await api("POST", path, { json: { text } });
  }
  if (state.threadId !== t.id) return;
  if (!state.messages.some((m) => m.id === message.id)) state.messages.push(message);
  renderThreadMessages(true);
}

async function markDone() {
  const t = state.thread;
  const ok = await confirmDialog(
    "Mark this thread as done?",
    "It becomes read-only here and in Slack, where a closing reply and a check mark show it is closed.",
    "Mark as Done",
  );
  if (!ok) return;
  try {
    const thread = await api("POST", `/api/v1/threads/${encodeURIComponent(t.id)}/done`);
    state.thread = thread;
    const listed = state.threads.findIndex((x) => x.id === thread.id);
    if (listed >= 0) state.threads[listed] = thread;
    showNotice("Thread marked as done.");
    renderThreadHeader();
    await loadMessages(true);
  } catch (err) {
    showError("Could not mark the thread as done", err);
  }
}

// --- the composer: text, emoji, files, @-suggestions --------------------------------------

function makeComposer({ id, label, placeholder, submitLabel, onSend, errorContext, requireText }) {
  const files = [];
  const textId = `${id}-text`;
  const listId = `${id}-suggestions`;
  const text = h("textarea", {
    id: textId,
    rows: "3",
    placeholder,
    role: "combobox",
    "aria-autocomplete": "list",
    "aria-expanded": "false",
    "aria-controls": listId,
  });
  const suggestions = h("ul", { id: listId, class: "suggestions", role: "listbox", hidden: true, "aria-label": "Mention suggestions" });
  const chips = h("ul", { class: "chips", "aria-label": "Files to send" });
  const fileInput = h("input", { type: "file", multiple: true, hidden: true, id: `${id}-files`, tabindex: "-1" });
  const attach = h("button", { type: "button", class: "icon-button", "aria-label": "Attach files", title: "Attach files" }, svgIcon(ICONS.attach));
  const emojiButton = h("button", {
    type: "button", class: "icon-button", "aria-label": "Add emoji", title: "Add emoji",
    "aria-haspopup": "true", "aria-expanded": "false",
  }, svgIcon(ICONS.smile));
  const emojiPanel = h("div", { class: "emoji-panel", role: "group", "aria-label": "Emoji", hidden: true });
  const send = h("button", { type: "submit", class: "primary" }, submitLabel);
  const form = h(
    "form",
    { class: "composer", id: `${id}-composer`, "aria-label": label },
    h("label", { for: textId, class: "composer-label" }, label),
    h("div", { class: "composer-field" }, text, suggestions),
    chips,
    h("div", { class: "composer-tools" }, emojiButton, attach, fileInput, h("span", { class: "spacer" }),
      h("span", { class: "help" }, "Enter sends, Shift+Enter for a new line"), send),
    emojiPanel,
  );

  function renderChips() {
    fill(chips, 
      ...files.map((f, i) =>
        h(
          "li",
          { class: "chip" },
          `${f.name} (${fmt.formatBytes(f.size)})`,
          h("button", {
            type: "button", class: "chip-remove", "aria-label": `Remove ${f.name}`,
            onclick: () => { files.splice(i, 1); renderChips(); text.focus(); },
          }, "×"),
        ),
      ),
    );
  }
  attach.addEventListener("click", () => fileInput.click());
  fileInput.addEventListener("change", () => {
    files.push(...fileInput.files);
    fileInput.value = "";
    renderChips();
    text.focus();
  });

  // Emoji go in at the caret.
  for (const e of EMOJI) {
    const b = h("button", { type: "button", class: "emoji", "aria-label": `Insert ${e}` }, e);
    b.addEventListener("click", () => {
      insertAtCaret(text, e);
      closeEmoji();
      text.focus();
    });
    emojiPanel.append(b);
  }
  function closeEmoji() {
    emojiPanel.hidden = true;
    emojiButton.setAttribute("aria-expanded", "false");
  }
  emojiButton.addEventListener("click", () => {
    const open = emojiPanel.hidden;
    emojiPanel.hidden = !open;
    emojiButton.setAttribute("aria-expanded", String(open));
    if (open) emojiPanel.querySelector("button")?.focus();
  });
  emojiPanel.addEventListener("keydown", (e) => {
    if (e.key === "Escape") {
      e.preventDefault();
      closeEmoji();
      emojiButton.focus();
    }
  });

  // @-suggestions.
  let shown = [];
  let active = 0;
  let at = null;
  function closeSuggestions() {
    suggestions.hidden = true;
    shown = [];
    at = null;
    text.setAttribute("aria-expanded", "false");
    text.removeAttribute("aria-activedescendant");
  }
  function renderSuggestions() {
    fill(suggestions, 
      ...shown.map((m, i) =>
        h(
          "li",
          {
            id: `${listId}-${i}`,
            role: "option",
            class: "suggestion",
            "aria-selected": i === active ? "true" : "false",
            onmousedown: (e) => { e.preventDefault(); pick(i); },
          },
          h("strong", {}, `@${m.handle}`),
          h("span", { class: "muted" }, ` ${m.kind === "usergroup" ? "group · " : ""}${m.name || ""}`),
        ),
      ),
    );
    text.setAttribute("aria-activedescendant", `${listId}-${active}`);
  }
  async function updateSuggestions() {
    const found = fmt.mentionAt(text.value, text.selectionStart);
    if (!found) return closeSuggestions();
    const candidates = await loadMentions();
    const again = fmt.mentionAt(text.value, text.selectionStart);
    if (!again || again.start !== found.start) return;
    shown = fmt.filterMentions(candidates, again.query);
    if (!shown.length) return closeSuggestions();
    at = again;
    active = Math.min(active, shown.length - 1);
    suggestions.hidden = false;
    text.setAttribute("aria-expanded", "true");
    renderSuggestions();
  }
  function pick(i) {
    if (!at || !shown[i]) return;
    const next = fmt.insertMention(text.value, at.start, text.selectionStart, shown[i].handle);
    text.value = next.text;
    text.setSelectionRange(next.caret, next.caret);
    closeSuggestions();
    text.focus();
  }
  text.addEventListener("input", () => { active = 0; updateSuggestions(); });
  text.addEventListener("click", updateSuggestions);
  text.addEventListener("blur", () => setTimeout(closeSuggestions, 150));
  text.addEventListener("keydown", (e) => {
    if (!suggestions.hidden && shown.length) {
      if (e.key === "ArrowDown" || e.key === "ArrowUp") {
        e.preventDefault();
        active = (active + (e.key === "ArrowDown" ? 1 : shown.length - 1)) % shown.length;
        renderSuggestions();
        return;
      }
      if (e.key === "Enter" || e.key === "Tab") {
        e.preventDefault();
        pick(active);
        return;
      }
      if (e.key === "Escape") {
        e.preventDefault();
        closeSuggestions();
        return;
      }
    }
    if (e.key === "Enter" && !e.shiftKey && !e.isComposing) {
      e.preventDefault();
      form.requestSubmit();
    }
  });

  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    const value = text.value;
    if (!value.trim() && (requireText || !files.length)) {
      showError(errorContext, requireText ? "write the query first" : "write a message or attach a file first");
      text.focus();
      return;
    }
    send.disabled = true;
    send.textContent = "Sending…";
    try {
      await onSend({ text: value, files: [...files] });
      text.value = "";
      files.length = 0;
      renderChips();
      clearError();
    } catch (err) {
      showError(errorContext, err);
    } finally {
      send.disabled = false;
      send.textContent = submitLabel;
    }
  });
  return { element: form, text };
}

function insertAtCaret(textarea, insert) {
  const start = textarea.selectionStart ?? textarea.value.length;
  const end = textarea.selectionEnd ?? start;
  textarea.value = textarea.value.slice(0, start) + insert + textarea.value.slice(end);
  const caret = start + insert.length;
  textarea.setSelectionRange(caret, caret);
}

// --- notifications (long poll) ------------------------------------------------------------

async function pollNotifications(generation) {
  let failures = 0;
  while (state.pollGeneration === generation && state.token) {
    try {
      const data = await api("GET", `/api/v1/notifications?after=${encodeURIComponent(state.cursor)}&wait=25`);
      if (state.pollGeneration !== generation) return;
      failures = 0;
      state.cursor = data.cursor;
      const chats = new Set(data.notifications.map((n) => n.chat_id));
      if (state.chat && chats.has(state.chat.id)) await onThreadReplies(data.notifications.filter((n) => n.chat_id === state.chat.id));
    } catch (err) {
      if (state.pollGeneration !== generation || err.status === 401) return;
      failures++;
      await new Promise((r) => setTimeout(r, Math.min(30000, 1000 * 2 ** Math.min(failures, 5))));
    }
  }
}

async function onThreadReplies(notes) {
  for (const n of notes) {
    const t = state.threads.find((x) => x.id === n.thread_id);
    if (t) t.unread = n.unread;
  }
  renderBubble();
  try {
    if (state.panel === "thread" && notes.some((n) => n.thread_id === state.threadId)) await loadMessages(false);
    await loadThreads();
    if (state.panel === "thread") {
      // The open thread was just read: its count is 0.
      const open = state.threads.find((x) => x.id === state.threadId);
      if (open && open.unread) await loadMessages(false).then(loadThreads);
    }
  } catch (err) {
    showError("Could not refresh the threads", err);
  }
}

// --- users (admin) -----------------------------------------------------------------------

async function loadUsers() {
  const view = byId("users-view");
  const form = h("form", { class: "card user-form", id: "user-form", "aria-labelledby": "new-user-title" });
  const idInput = h("input", { id: "user-id", required: true, autocomplete: "off" });
  const nameInput = h("input", { id: "user-name", required: true, autocomplete: "off" });
  const roleSelect = h("select", { id: "user-role" }, h("option", { value: "agent" }, "agent"),
    h("option", { value: "admin" }, "admin"), h("option", { value: "bot" }, "bot"));
  const inbox = h("input", { id: "user-inbox", type: "checkbox", checked: true });
  const result = h("div", { id: "user-created", role: "status" });
  append(form, [
    h("h3", { id: "new-user-title" }, "New user"),
    h("label", { for: "user-id" }, "Id"), idInput,
    h("label", { for: "user-name" }, "Name"), nameInput,
    h("label", { for: "user-role" }, "Role"), roleSelect,
    h("label", { class: "check" }, inbox, " Inbox access (agents: may use internal threads)"),
    h("button", { type: "submit", class: "primary" }, "Create user"),
    result,
  ]);
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    try {
      const u = await api("POST", "/api/v1/users", {
        json: { id: idInput.value.trim(), name: nameInput.value.trim(), role: roleSelect.value, inbox_access: inbox.checked },
      });
      fill(result, 
        h("p", {}, `User ${u.id} created. Their token, shown only now:`),
        h("code", { class: "token", id: "new-token" }, u.token),
      );
      idInput.value = nameInput.value = "";
      state.agents = null;
      await renderUserTable();
    } catch (err) {
      showError("Could not create the user", err);
    }
  });
  fill(view, h("div", { id: "user-table" }), form);
  fill(byId("chat-pane"), h("div", { class: "empty" }, h("p", {}, "Create users here; each gets a token once.")));
  await renderUserTable();
}

async function renderUserTable() {
  const holder = byId("user-table");
  if (!holder) return;
  try {
    const users = (await api("GET", "/api/v1/users")).users;
    fill(holder, 
      h(
        "table",
        { class: "users" },
        h("thead", {}, h("tr", {}, h("th", { scope: "col" }, "Id"), h("th", { scope: "col" }, "Name"),
          h("th", { scope: "col" }, "Role"), h("th", { scope: "col" }, "Inbox access"))),
        h("tbody", {}, users.map((u) => h("tr", {}, h("td", {}, u.id), h("td", {}, u.name), h("td", {}, u.role),
          h("td", {}, u.role === "agent" ? (u.inbox_access ? "yes" : "no") : "—")))),
      ),
    );
  } catch (err) {
    showError("Could not load the users", err);
  }
}

// --- start -----------------------------------------------------------------------------------

document.addEventListener("keydown", (e) => {
  if (e.key !== "Escape" || !state.chat || !state.panel || document.querySelector("dialog[open]")) return;
  const t = e.target;
  if (t.closest && (t.closest(".emoji-panel") || (t.getAttribute("aria-expanded") === "true"))) return;
  go(state.chat.id, null);
});

async function boot() {
  if (!state.token) return renderSignIn();
  try {
    state.me = await api("GET", "/api/v1/me", { quiet401: true });
    if (state.me.role === "bot") return signOut("This token belongs to the bot role, which has no inbox page.");
    startApp();
  } catch (err) {
    signOut(err.status === 401 ? "Your token is no longer valid: sign in again." : `Could not reach the server: ${err.message}`);
  }
}

boot();
