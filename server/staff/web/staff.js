// Vuoro staff page: plain JavaScript, no build step, no CDN.
// Every change goes through the hub's /api/v1/counters/{desk}/... endpoints with
// the session cookie and the session's CSRF token; live state comes from the
// hub's server-sent event stream (/api/v1/stream).
"use strict";

const boot = JSON.parse(document.getElementById("boot").textContent);
const W = boot.strings;
const $ = (id) => document.getElementById(id);

function t(key, vars) {
  let text = W[key] || key;
  for (const [name, value] of Object.entries(vars || {})) text = text.replace(`{${name}}`, value);
  return text;
}

function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (k === "class") node.className = v;
    else node.setAttribute(k, v);
  }
  for (const child of children) node.append(child);
  return node;
}

const services = Object.fromEntries(boot.services.map((s) => [s.id, s]));
const counters = Object.fromEntries(boot.counters.map((c) => [c.id, c]));
const state = { counters: {}, queues: {}, waiting: null, desk: null };

function serviceName(id) {
  const s = services[id];
  if (!s) return id;
  return s.names[boot.language] || s.names.en || Object.values(s.names)[0] || id;
}

function setLabel(id, text) {
  const button = $(id);
  let label = button.querySelector(".label");
  if (!label) { label = el("span", { class: "label" }); button.prepend(label); }
  label.textContent = text;
}

// -- static words -------------------------------------------------------------------

function fillWords() {
  $("site-name").textContent = boot.site;
  $("who").textContent = t("Logged in as {user}", { user: boot.user });
  $("desk-label").textContent = t("Desk");
  $("logout").textContent = t("Log out");
  $("logout-csrf").value = boot.csrf;
  $("serving-h").textContent = t("Now serving");
  setLabel("act-next", t("Call next"));
  setLabel("act-recall", t("Call again"));
  setLabel("act-finish", t("Finish"));
  setLabel("act-no-show", t("No-show"));
  $("transfer-label").textContent = t("Transfer to");
  $("act-transfer").textContent = t("Transfer");
  $("waiting-h").textContent = t("Waiting");
  $("bookings-h").textContent = t("Today's bookings");
  $("devices-h").textContent = t("Devices");
  $("shortcuts").textContent = t("Keys: N next · R again · F finish · X no-show · P pause/open");
  setLabel("act-pause", t("Pause desk"));
  for (const button of document.querySelectorAll("[data-key]")) button.append(el("kbd", {}, button.dataset.key));
  fillKeyWords();
  const langs = $("languages");
  for (const [code, name] of Object.entries(boot.languages)) {
    const a = el("a", { href: `?lang=${code}`, lang: code }, name);
    if (code === boot.language) a.setAttribute("aria-current", "true");
    langs.append(a, " ");
  }
  const select = $("desk");
  select.append(el("option", { value: "" }, t("Choose your desk")));
  for (const c of boot.counters) select.append(el("option", { value: c.id }, c.name));
  const saved = localStorage.getItem("vuoro.staff.desk");
  if (saved && counters[saved]) select.value = saved;
  state.desk = select.value || null;
  select.addEventListener("change", () => {
    state.desk = select.value || null;
    if (state.desk) localStorage.setItem("vuoro.staff.desk", state.desk);
    showMessage("");
    render();
  });
}

// -- drawing ------------------------------------------------------------------------

function renderDesk() {
  const desk = state.desk;
  const cs = desk ? state.counters[desk] : null;
  const serving = cs && cs.serving;
  for (const b of document.querySelectorAll(".actions button, #act-transfer")) b.disabled = !desk;
  $("current").textContent = serving ? serving.ticket : (desk ? t("No one at the desk") : t("Choose your desk"));
  $("current").classList.toggle("empty", !serving);
  $("current-detail").textContent = serving
    ? `${serviceName(serving.service)} · ${t("since {time}", { time: (serving.called_at || "").slice(11, 16) })}`
    : "";
  const status = cs ? cs.status : "closed";
  const pill = $("desk-status");
  pill.textContent = desk ? t({ open: "Open", paused: "Paused", closed: "Closed" }[status] || status) : "";
  pill.className = `pill ${status}`;
  const pause = $("act-pause");
  pause.dataset.action = status === "open" ? "pause" : "resume";
  setLabel("act-pause", status === "open" ? t("Pause desk") : t("Open desk"));
  $("act-recall").disabled = !serving;
  $("act-finish").disabled = !serving;
  $("act-no-show").disabled = !serving;
  $("act-transfer").disabled = !serving;
  const transfer = $("transfer-to");
  const keep = transfer.value;
  transfer.replaceChildren(...boot.services
    .filter((s) => !serving || s.id !== serving.service)
    .map((s) => el("option", { value: s.id }, serviceName(s.id))));
  if (keep) transfer.value = keep;
}

function renderWaiting() {
  const box = $("waiting");
  if (state.waiting === null) return; // not loaded yet: say nothing rather than "no one is waiting"
  const desk = state.desk ? counters[state.desk] : null;
  // The desk's own services first, in its order of preference, then the rest.
  const order = desk ? [...desk.services, ...boot.services.map((s) => s.id).filter((id) => !desk.services.includes(id))]
                     : boot.services.map((s) => s.id);
  const parts = [];
  for (const sid of order) {
    const line = state.waiting[sid] || [];
    const q = state.queues[sid];
    const mine = desk && desk.services.includes(sid);
    if (!mine && line.length === 0) continue;
    const head = el("h3", {}, `${services[sid] ? services[sid].letter : ""} · ${serviceName(sid)} `,
      el("span", { class: "count" }, t("{n} waiting", { n: line.length })));
    const list = el("ol", { class: "tickets", "data-service": sid });
    for (const item of line.slice(0, 30)) {
      const note = item.due_at ? t("booked {time}", { time: item.due_at.slice(11, 16) })
                               : t("waited {n} min", { n: item.waited_min });
      list.append(el("li", { class: item.origin === "booking" ? "booking" : "" },
        el("strong", {}, item.ticket), " ", el("span", { class: "muted" }, note)));
    }
    if (!line.length) list.append(el("li", { class: "muted none" }, t("No one is waiting")));
    const group = el("div", { class: mine ? "line mine" : "line" }, head, list);
    if (q && !q.open) group.classList.add("closed");
    parts.push(group);
  }
  box.replaceChildren(...parts);
}

function render() {
  renderDesk();
  renderWaiting();
}

function showMessage(text, kind) {
  const m = $("message");
  m.textContent = text;
  m.className = `message ${kind || ""}`;
}

// -- actions --------------------------------------------------------------------------

function requestId() {
  const bytes = new Uint8Array(12);
  crypto.getRandomValues(bytes);
  return "staff-" + Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

async function act(action) {
  if (!state.desk) return;
  const init = { method: "POST", credentials: "same-origin",
                 headers: { "X-CSRF-Token": boot.csrf, "Idempotency-Key": requestId() } };
  if (action === "transfer") {
    init.headers["Content-Type"] = "application/json";
    init.body = JSON.stringify({ service: $("transfer-to").value });
  }
  let answer;
  try {
    const response = await fetch(`/api/v1/counters/${encodeURIComponent(state.desk)}/${action}`, init);
    if (response.status === 401) { sessionEnded(); return; }
    answer = await response.json();
    if (!response.ok) { showMessage(refusal(answer.error), "bad"); return; }
  } catch (err) {
    showMessage(t("Something went wrong. Try again."), "bad");
    return;
  }
  if (answer.counter) state.counters[state.desk] = answer.counter;
  const call = answer.call;
  const words = {
    next: call ? t("Called {ticket}", { ticket: call.ticket }) : t("No one is waiting"),
    recall: call ? t("Called {ticket} again", { ticket: call.ticket }) : "",
    "no-show": t("Marked as not shown up"), finish: t("Finished"), transfer: t("Transferred"),
    pause: t("Desk paused"), resume: t("Desk open"),
  };
  showMessage(words[action] || answer.message || "", call || action !== "next" ? "good" : "");
  render();
  refreshWaiting();
}

// The hub words its refusals in English; the ones a desk meets are said here in the page's language.
function refusal(error) {
  const byCode = {
    no_current_visitor: t("No visitor is being served at this desk."),
    same_service: t("The visitor is already in that line."),
    store_unavailable: t("The hub could not save this. Nothing changed; try again."),
  };
  return (error && (byCode[error.code] || error.message)) || t("Something went wrong. Try again.");
}

function sessionEnded() {
  showMessage(t("Your session has ended. Log in again."), "bad");
  setTimeout(() => { window.location.href = "/staff/login"; }, 1500);
}

document.addEventListener("click", (event) => {
  const button = event.target.closest("button[data-action]");
  if (button && !button.disabled) act(button.dataset.action);
});

// -- keyboard (WCAG 2.1.4): Alt+Shift+letter always; the letter alone unless turned off here (remembered) --

const SINGLE_KEYS = "vuoro.staff.singleKeys";
function singleKeys() { return localStorage.getItem(SINGLE_KEYS) !== "off"; }

function fillKeyWords() {
  $("skip").textContent = t("Skip to Call next");
  $("skip").addEventListener("click", (event) => {  // the button itself, or the desk choice while it is disabled
    event.preventDefault();
    ($("act-next").disabled ? $("desk") : $("act-next")).focus();
  });
  $("single-keys-label").textContent = t("Letter keys without Alt+Shift");
  const box = $("single-keys");
  box.checked = singleKeys();
  box.addEventListener("change", () => { localStorage.setItem(SINGLE_KEYS, box.checked ? "on" : "off"); keyHints(); });
  keyHints();
}

function keyHints() {
  for (const button of document.querySelectorAll("[data-key]")) {
    const key = button.dataset.key;
    button.setAttribute("aria-keyshortcuts", singleKeys() ? `${key} Alt+Shift+${key}` : `Alt+Shift+${key}`);
  }
}

document.addEventListener("keydown", (event) => {
  const withModifier = event.altKey && event.shiftKey && !event.ctrlKey && !event.metaKey;
  if (event.repeat || !(withModifier || (singleKeys() && !event.ctrlKey && !event.metaKey && !event.altKey))) return;
  const tag = (event.target.tagName || "").toLowerCase();
  if (tag === "input" || tag === "textarea" || tag === "select") return;
  // with Alt+Shift, event.key is whatever the layout makes of it (Å, Ï…): read the key itself
  const letter = withModifier && event.code.startsWith("Key") ? event.code.slice(3) : event.key.toUpperCase();
  const button = document.querySelector(`button[data-key="${letter}"]`);
  if (button && !button.disabled) {
    event.preventDefault();
    button.classList.add("pressed");
    setTimeout(() => button.classList.remove("pressed"), 150);
    act(button.dataset.action);
  }
});

// -- live data -----------------------------------------------------------------------------

let waitingTimer = null;
function refreshWaiting() {
  clearTimeout(waitingTimer);
  waitingTimer = setTimeout(async () => {
    try {
      const response = await fetch("/staff/api/waiting", { credentials: "same-origin" });
      if (response.status === 401) { sessionEnded(); return; }
      if (response.ok) { state.waiting = (await response.json()).services; renderWaiting(); }
    } catch (err) { /* the stream's banner says the hub is away */ }
  }, 50);
}

function connectStream() {
  const stream = new EventSource("/api/v1/stream");
  stream.addEventListener("open", () => { $("offline").hidden = true; refreshWaiting(); });
  stream.addEventListener("error", () => {
    $("offline").textContent = t("Lost the connection to the hub. Reconnecting…");
    $("offline").hidden = false;
  });
  stream.addEventListener("state", (event) => {
    const { topic, payload } = JSON.parse(event.data);
    const parts = topic.split("/");
    if (parts[0] === "counters" && parts[2] === "state") {
      state.counters[parts[1]] = payload;
      if (parts[1] === state.desk) renderDesk();
    } else if (parts[0] === "queue" && parts[2] === "state") {
      state.queues[parts[1]] = payload;
      refreshWaiting();
    }
  });
}

async function refreshDevices() {
  const list = $("devices");
  try {
    const response = await fetch("/api/v1/devices", { credentials: "same-origin" });
    if (response.status === 401) { sessionEnded(); return; }
    if (!response.ok) return;
    const devices = await response.json();
    const kinds = { kiosk: "Kiosk", display: "Screen", button: "Button box", printer: "Printer", hub: "Hub" };
    const paper = { ok: "paper ok", paper_low: "paper low", paper_out: "paper out", cover_open: "cover open",
                    offline: "printer offline", error: "printer error", unknown: "printer state unknown" };
    if (!devices.length) { list.replaceChildren(el("li", { class: "muted" }, t("No devices have reported yet"))); return; }
    list.replaceChildren(...devices.map((d) => {
      const alerts = d.alerts || [];
      const known = d.online !== null && d.online !== undefined;  // null: no status, only an alert (a token)
      const bad = (known && !d.online) || (d.printer && d.printer !== "ok") || alerts.length > 0;
      const item = el("li", { class: bad ? "device bad" : "device", "data-device": d.device },
        el("span", { class: d.online ? "dot on" : "dot off", "aria-hidden": "true" }),
        el("strong", {}, d.device), " ", el("span", { class: "muted" }, t(kinds[d.kind] || d.kind)));
      if (known) item.append(" ", el("span", { class: d.online ? "state good" : "state bad" },
                                     t(d.online ? "online" : "offline")));
      if (d.printer) item.append(" ", el("span", { class: d.printer === "ok" ? "state good" : "state bad" },
                                         t(paper[d.printer] || d.printer)));
      // GET /api/v1/devices alerts (docs/protocol.md): someone trying booking codes from this device.
      for (const a of alerts.filter((a) => a.code === "booking_codes_guessed")) {
        const words = t("{n} wrong booking codes in the last hour", { n: a.wrong_codes_last_hour })
          + (a.slowed ? " – " + t("slowed down") : "");
        item.append(el("span", { class: "alert", role: "alert", "data-alert": a.code }, "⚠ " + words));
      }
      return item;
    }));
  } catch (err) { /* keep the last list */ }
}

async function refreshBookings() {
  const box = $("bookings");
  const day = boot.day || new Date().toISOString().slice(0, 10);
  try {
    const response = await fetch(`/api/v1/bookings?day=${encodeURIComponent(day)}`, { credentials: "same-origin" });
    if (!response.ok) { box.replaceChildren(el("p", { class: "muted" }, t("No bookings today"))); return; }
    const body = await response.json();
    const bookings = Array.isArray(body) ? body : (body.bookings || []);
    if (!bookings.length) { box.replaceChildren(el("p", { class: "muted" }, t("No bookings today"))); return; }
    const list = el("ul", { class: "bookings" });
    // GET /api/v1/bookings (docs/bookings.md): status booked | checked_in | no_show | cancelled;
    // for staff, ticket is {id, ticket, status} once checked in.
    for (const b of bookings.filter((b) => b.status !== "cancelled")) {
      const start = (b.start || "").slice(11, 16);
      const checked = b.status === "checked_in";
      const label = b.ticket && typeof b.ticket === "object" ? b.ticket.ticket : b.ticket;
      const state = checked ? t("checked in") : b.status === "no_show" ? t("No-show") : t("not checked in");
      // Staff see the time, the service and the ticket; never the visitor's name on this list.
      list.append(el("li", { class: checked ? "checked" : "", "data-booking": b.id || "" },
        el("strong", {}, start), " ", serviceName(b.service), " ",
        label ? el("span", { class: "ticket" }, label) : "", " ",
        el("span", { class: checked ? "state good" : "state muted" }, state)));
    }
    if (!list.children.length) { box.replaceChildren(el("p", { class: "muted" }, t("No bookings today"))); return; }
    box.replaceChildren(list);
  } catch (err) {
    box.replaceChildren(el("p", { class: "muted" }, t("No bookings today")));
  }
}

fillWords();
render();
connectStream();
refreshDevices();
refreshBookings();
setInterval(refreshDevices, 10000);
setInterval(refreshBookings, 30000);
setInterval(refreshWaiting, 30000); // the minutes waited grow even when nothing changes
