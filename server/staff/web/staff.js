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
  if (keep && [...transfer.options].some((o) => o.value === keep)) transfer.value = keep; // else a blank choice
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

// A desk action whose answer never came (the connection ended: a restart of the hub, a keep-alive closed as the
// request went out) is sent once more with the SAME Idempotency-Key: the hub answers it with what it did the
// first time, so a lost answer never calls a second visitor (docs/protocol.md, "Connections").
async function fetchOnceMore(url, init) {
  try {
    return await fetch(url, init);
  } catch (err) {
    await new Promise((resolve) => setTimeout(resolve, 300));
    return fetch(url, init);
  }
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
    const response = await fetchOnceMore(`/api/v1/counters/${encodeURIComponent(state.desk)}/${action}`, init);
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

// -- staff API calls (bookings, sign-ups) ---------------------------------------------------

// A change with the session's CSRF token; the answer's JSON, or throws {refusal} with the hub's error.
async function send(method, url, body, extraHeaders, event) {
  const init = { method, credentials: "same-origin", headers: { "X-CSRF-Token": boot.csrf, ...(extraHeaders || {}) } };
  if (body !== undefined) { init.headers["Content-Type"] = "application/json"; init.body = JSON.stringify(body); }
  const repeatable = method !== "POST" || "Idempotency-Key" in init.headers;  // the hub takes these twice safely
  const response = await (repeatable ? fetchOnceMore : fetch)(url, init);
  if (response.status === 401) { sessionEnded(); throw { refusal: "" }; }
  const answer = await response.json().catch(() => ({}));
  if (!response.ok) throw { refusal: staffRefusal(answer.error, event) };
  return answer;
}

// The refusals met while booking and cancelling, in the page's language.
function staffRefusal(error, event) {
  const byCode = {
    full: event ? t("The event is full, and so is its waiting list.") : t("That time is fully booked. Choose another time."),
    past: t("That time has passed."),
    checked_in: t("The visitor has already checked in."),
    cancelled: t("This booking was cancelled."),
    unknown_booking: t("The booking is no longer there."),
    unknown_signup: t("The sign-up is no longer there."),
    started: t("The event has already begun."),
    no_slot: t("No one takes bookings at that time."),
  };
  return (error && byCode[error.code]) || refusal(error);
}

// "tir. 24.11." and "10:15" from the hub's local ISO times (they carry the site's offset).
function dayLabel(iso) {
  const [y, m, d] = iso.slice(0, 10).split("-").map(Number);
  const date = new Date(Date.UTC(y, m - 1, d, 12));
  return new Intl.DateTimeFormat(boot.language, { weekday: "short", day: "numeric", month: "numeric", timeZone: "UTC" })
    .format(date);
}
const clock = (iso) => (iso || "").slice(11, 16);

// -- today's bookings: who, and move / cancel -------------------------------------------------

// The list shows one day: today, or another a caller asks about (‹ › or the date field).
const today = () => boot.day || new Date().toISOString().slice(0, 10);
let bookingsDay = null;

function showBookingsDay(day) {
  bookingsDay = day && day !== today() ? day : null;
  refreshBookings();
}

function shiftDay(iso, days) {
  const [y, m, d] = iso.split("-").map(Number);
  return new Date(Date.UTC(y, m - 1, d + days, 12)).toISOString().slice(0, 10);
}

function fillBookingsDay() {
  $("bookings-prev").setAttribute("aria-label", t("Previous day"));
  $("bookings-next").setAttribute("aria-label", t("Next day"));
  $("bookings-day").setAttribute("aria-label", t("Day"));
  $("bookings-today").textContent = t("Today");
  $("bookings-prev").addEventListener("click", () => showBookingsDay(shiftDay(bookingsDay || today(), -1)));
  $("bookings-next").addEventListener("click", () => showBookingsDay(shiftDay(bookingsDay || today(), 1)));
  $("bookings-today").addEventListener("click", () => showBookingsDay(null));
  $("bookings-day").addEventListener("change", () => showBookingsDay($("bookings-day").value || null));
}

async function refreshBookings() {
  const box = $("bookings");
  const day = bookingsDay || today();
  $("bookings-h").textContent = bookingsDay ? t("Bookings {day}", { day: dayLabel(day) }) : t("Today's bookings");
  $("bookings-day").value = day;
  $("bookings-today").hidden = !bookingsDay;
  const none = () => box.replaceChildren(el("p", { class: "muted" },
                                            bookingsDay ? t("No bookings this day") : t("No bookings today")));
  try {
    const response = await fetch(`/api/v1/bookings?day=${encodeURIComponent(day)}`, { credentials: "same-origin" });
    if (!response.ok) { none(); return; }
    const body = await response.json();
    // GET /api/v1/bookings (docs/bookings.md): status booked | checked_in | no_show | cancelled; staff (this
    // session) also get code, name, phone, e-mail and note. They are shown here only: never on a screen or receipt.
    const bookings = (body.bookings || []).filter((b) => b.status !== "cancelled");
    if (!bookings.length) { none(); return; }
    box.replaceChildren(el("ul", { class: "bookings" }, ...bookings.map(bookingItem)));
    // The centre's bookings come from the hub's copy (kept while the centre cannot be reached): say how old it is.
    if (body.centre_as_of && bookings.some((b) => b.side === "centre")) {
      box.append(el("p", { class: "muted", "data-testid": "centre-as-of" },
                    t("The centre's bookings as of {time} {day}.", { time: clock(body.centre_as_of),
                                                                     day: body.centre_as_of.slice(0, 10) })));
    }
  } catch (err) {
    none();
  }
}

function bookingItem(b) {
  const checked = b.status === "checked_in";
  const label = b.ticket && typeof b.ticket === "object" ? b.ticket.ticket : b.ticket;
  const stateWords = checked ? t("checked in") : b.status === "no_show" ? t("No-show") : t("not checked in");
  const main = el("div", { class: "booking-main" },
    el("strong", {}, clock(b.start)), " ", serviceName(b.service), " ",
    label ? el("span", { class: "ticket" }, label) : "", " ",
    el("span", { class: checked ? "state good" : "state muted" }, stateWords));
  const item = el("li", { class: checked ? "booking-item checked" : "booking-item", "data-booking": b.id || "" }, main);
  const who = el("div", { class: "booking-who", "data-testid": "booking-who" });
  if (b.name) who.append(el("span", { class: "who-name" }, b.name));
  if (b.phone) who.append(el("span", { class: "who-phone" }, b.phone));
  // The e-mail a citizen gave on the booking page (where the service asks for it): staff only, like the phone.
  if (b.email) who.append(el("span", { class: "who-email" }, b.email));
  if (b.code_display) who.append(el("span", { class: "who-code" }, `${t("Code")} ${b.code_display}`));
  if (b.note) who.append(el("span", { class: "who-note" }, b.note));
  if (who.children.length) item.append(who);
  if (b.side === "centre") {
    // Booked at the municipality's centre for a day this branch has not taken over: the centre owns its place,
    // so it is moved or cancelled on the centre's calendar (docs/bookings.md "One calendar").
    item.append(el("div", { class: "booking-centre muted", "data-testid": "booking-centre" },
                   `${t("Booked at the centre")} – ${t("Move or cancel it on the centre's calendar.")}`));
    return item;
  }
  if (!checked) {
    const move = el("button", { type: "button", class: "small-button", "data-testid": "booking-move" }, t("Move"));
    move.addEventListener("click", () => startMoving(b));
    const cancel = confirmButton(t("Cancel booking"), t("Yes, cancel"), "booking-cancel", async () => {
      try {
        await send("DELETE", `/api/v1/bookings/${encodeURIComponent(b.id)}`);
        bookResult(t("Booking cancelled"), "good");
      } catch (err) { bookResult(err.refusal, "bad"); }
      refreshBookings();
      loadSlots();
    });
    item.append(el("div", { class: "row-actions" }, move, cancel));
  }
  return item;
}

// A button that asks once more before it does something that cannot be undone.
function confirmButton(text, confirmText, testid, action) {
  const button = el("button", { type: "button", class: "small-button warn", "data-testid": testid }, text);
  let armed = null;
  button.addEventListener("click", () => {
    if (!armed) {
      button.textContent = confirmText;
      button.classList.add("armed");
      armed = setTimeout(() => { armed = null; button.textContent = text; button.classList.remove("armed"); }, 5000);
      return;
    }
    clearTimeout(armed);
    armed = null;
    button.disabled = true;
    action();
  });
  return button;
}

// -- book for a caller (phone booking) and move a booking -----------------------------------------

const booking = { slots: [], day: null, start: null, moving: null, loading: 0 };
const bookable = Object.fromEntries((boot.bookable || []).map((b) => [b.id, b]));

function fillBookingWords() {
  $("book-h").textContent = t("Book for a caller");
  $("book-service-label").textContent = t("Service");
  $("book-length-label").textContent = t("Length");
  $("book-day-label").textContent = t("Day");
  $("book-slot-label").textContent = t("Time");
  $("book-name-label").textContent = t("Name");
  $("book-phone-label").textContent = t("Phone");
  $("book-note-label").textContent = t("Note");
  $("book-notify-label").textContent = t("Confirmation and reminder to (mobile or e-mail, only if the caller asks)");
  $("book-notify-row").hidden = !boot.booking_notices;  // only where the site sends texts or e-mails
  $("book-submit").textContent = t("Book");
  $("book-stop").textContent = t("Stop moving");
  $("events-h").textContent = t("Sign-ups");
  const select = $("book-service");
  for (const b of boot.bookable || []) select.append(el("option", { value: b.id }, serviceName(b.id)));
  if (!select.options.length) { $("book-form").replaceChildren(el("p", { class: "muted" }, t("No service takes bookings"))); return; }
  select.addEventListener("change", () => { fillLengths(); booking.day = null; loadSlots(); });
  $("book-length").addEventListener("change", () => { booking.start = null; renderSlots(); });
  $("book-form").addEventListener("submit", (event) => { event.preventDefault(); submitBooking(); });
  $("book-stop").addEventListener("click", stopMoving);
  fillLengths();
}

function fillLengths(keep) {
  const rules = bookable[$("book-service").value];
  const lengths = $("book-length");
  if (!rules) return;
  lengths.replaceChildren(...Array.from({ length: rules.max_slots }, (_, i) =>
    el("option", { value: String(i + 1) }, t("{n} min", { n: (i + 1) * rules.slot_min }))));
  lengths.value = String(keep || 1);
  lengths.closest("label").hidden = rules.max_slots < 2;
}

async function loadSlots() {
  const service = $("book-service") && $("book-service").value;
  if (!service || !bookable[service]) return;
  const ticket = ++booking.loading;
  const days = Math.min(bookable[service].days_ahead, 14);
  try {
    const response = await fetch(`/api/v1/slots?service=${encodeURIComponent(service)}&days=${days}`,
                                 { credentials: "same-origin" });
    if (ticket !== booking.loading) return; // another service was chosen meanwhile
    if (response.status === 401) { sessionEnded(); return; }
    const body = response.ok ? await response.json() : { slots: [] };
    booking.slots = body.slots || [];
    const [y, m, d] = (boot.day || new Date().toISOString().slice(0, 10)).split("-").map(Number);
    booking.days = Array.from({ length: days }, (_, i) => new Date(Date.UTC(y, m - 1, d + i, 12)).toISOString().slice(0, 10));
  } catch (err) { return; }
  if (!booking.day || !booking.days.includes(booking.day)) {
    booking.day = booking.days.find((d) => booking.slots.some((s) => s.start.startsWith(d))) || booking.days[0];
  }
  renderSlots();
}

function renderSlots() {
  const length = Number($("book-length").value || 1);
  const fits = (s) => length === 1 || s.double; // a double slot needs the next slot free too
  const dayBox = $("book-days");
  dayBox.replaceChildren(...(booking.days || []).map((d) => {
    const free = booking.slots.filter((s) => s.start.startsWith(d) && fits(s)).length;
    const button = el("button", { type: "button", class: "day", "data-day": d, "aria-pressed": String(d === booking.day) },
      el("span", { class: "day-name" }, dayLabel(d)), el("span", { class: "day-free" }, t("{n} free", { n: free })));
    button.disabled = free === 0;
    button.addEventListener("click", () => { booking.day = d; booking.start = null; renderSlots(); });
    return button;
  }));
  const slots = booking.slots.filter((s) => s.start.startsWith(booking.day || "") && fits(s));
  const slotBox = $("book-slots");
  if (!slots.length) { slotBox.replaceChildren(el("p", { class: "muted" }, t("No free times this day"))); return; }
  slotBox.replaceChildren(...slots.map((s) => {
    const button = el("button", { type: "button", class: "slot", "data-start": s.start,
                                  "aria-pressed": String(s.start === booking.start) }, clock(s.start));
    button.addEventListener("click", () => { booking.start = s.start; renderSlots(); });
    return button;
  }));
}

function bookResult(text, kind, code) {
  const box = $("book-result");
  box.className = `book-result ${kind || ""}`;
  box.replaceChildren(text);
  if (code) box.append(" ", el("strong", { class: "code", "data-testid": "book-code" }, code),
                       el("span", { class: "muted hint" }, t("Read the code out to the caller.")));
}

async function submitBooking() {
  if (!booking.start) { bookResult(t("Choose a time"), "bad"); return; }
  const submit = $("book-submit");
  if (submit.disabled) return; // a second click while the first is on its way books nothing twice
  submit.disabled = true;
  const slots = Number($("book-length").value || 1);
  const when = `${dayLabel(booking.start)} ${clock(booking.start)}`;
  try {
    if (booking.moving) {
      const moved = await send("PATCH", `/api/v1/bookings/${encodeURIComponent(booking.moving.id)}`,
                               { start: booking.start, slots });
      stopMoving();
      bookResult(t("Moved to {time}.", { time: when }), "good", moved.code_display);
      bookingsDay = moved.day !== today() ? moved.day : null; // the list shows where it went
    } else {
      const body = { service: $("book-service").value, start: booking.start, slots };
      for (const field of ["name", "phone", "note"]) {
        const value = $(`book-${field}`).value.trim();
        if (value) body[field] = value;
      }
      const notifyTo = $("book-notify").value.trim();
      if (notifyTo && boot.booking_notices) body.notify_to = notifyTo;
      const made = await send("POST", "/api/v1/bookings", body, { "Idempotency-Key": requestId() });
      for (const field of ["name", "phone", "note", "notify"]) $(`book-${field}`).value = "";
      bookResult(t("Booked {time}. Code:", { time: when }), "good", made.code_display);
      bookingsDay = made.day !== today() ? made.day : null; // the list shows the new booking
    }
    booking.start = null;
  } catch (err) {
    bookResult(err.refusal, "bad");
  } finally {
    submit.disabled = false;
  }
  refreshBookings();
  loadSlots();
}

function startMoving(b) {
  booking.moving = b;
  $("book-service").value = b.service;
  $("book-service").disabled = true;
  fillLengths(b.slots);
  $("book-moving").textContent = t("Move booking {code}", { code: `${b.code_display || ""} ${b.name || ""}`.trim() })
    + ` (${clock(b.start)})`;
  $("book-moving").hidden = false;
  $("book-person").hidden = true;
  $("book-stop").hidden = false;
  $("book-submit").textContent = t("Move here");
  booking.start = null;
  bookResult("");
  loadSlots();
  $("book-form").scrollIntoView({ block: "nearest" });
}

function stopMoving() {
  booking.moving = null;
  $("book-service").disabled = false;
  $("book-moving").hidden = true;
  $("book-person").hidden = false;
  $("book-stop").hidden = true;
  $("book-submit").textContent = t("Book");
}

// -- event sign-ups: who is seated, who waits; cancel, and the waiting list moves up ---------------

// The list is drawn again on every change: which events are open and a name being typed are kept here.
const signupState = { open: new Set(), moved: new Set(), lists: {}, drafts: {} };

async function refreshEvents() {
  const box = $("events");
  try {
    const response = await fetch("/api/v1/events?days=7", { credentials: "same-origin" });
    if (!response.ok) return;
    const events = ((await response.json()).events || []).filter((e) => e.seats !== null && e.seats !== undefined);
    if (!events.length) { box.replaceChildren(el("p", { class: "muted" }, t("No events with sign-up"))); return; }
    await Promise.all([...signupState.open].map(loadSignups));
    box.replaceChildren(...events.map(eventItem));
  } catch (err) { /* keep the last list; the stream's banner says the hub is away */ }
}

async function loadSignups(eventId) {
  try {
    const response = await fetch(`/api/v1/events/${encodeURIComponent(eventId)}/signups`, { credentials: "same-origin" });
    if (response.ok) signupState.lists[eventId] = (await response.json()).signups;
    else if (response.status === 404) signupState.open.delete(eventId);
  } catch (err) { /* keep the last list */ }
}

function eventItem(e) {
  const list = signupState.lists[e.id];
  const waitingCount = list ? list.filter((s) => s.status === "waiting").length : null;
  const counts = [t("{n} seats left", { n: e.seats_left })];
  if (waitingCount) counts.push(t("{n} on the waiting list", { n: waitingCount }));
  if (e.state === "cancelled") counts.push(t("Cancelled"));
  const summary = el("summary", {},
    el("strong", {}, `${dayLabel(e.start)} ${clock(e.start)}`), " ", el("span", { class: "event-title" }, e.title),
    " ", el("span", { class: "count" }, counts.join(" · ")));
  const item = el("details", { class: "event", "data-event": e.id }, summary);
  if (signupState.open.has(e.id)) item.open = true;
  item.addEventListener("toggle", async () => {
    // Drawn open (it was open before): toggle fires for that too, and must not draw it again.
    if (item.open && !signupState.open.has(e.id)) {
      signupState.open.add(e.id);
      await loadSignups(e.id);
      item.replaceWith(eventItem(e));
    } else if (!item.open) signupState.open.delete(e.id);
  });
  if (!item.open) return item;
  const rows = (list || []).map((s) => signupItem(e, s));
  item.append(rows.length ? el("ol", { class: "signups", "data-testid": "signups" }, ...rows)
                          : el("p", { class: "muted" }, t("No sign-ups yet")));
  if (e.state !== "cancelled") {
    const name = el("input", { "aria-label": t("Name (optional)"), placeholder: t("Name (optional)"), maxlength: "100",
                               autocomplete: "off", "data-testid": "signup-name" });
    name.value = signupState.drafts[e.id] || "";
    name.addEventListener("input", () => { signupState.drafts[e.id] = name.value; });
    const add = el("button", { type: "button", class: "small-button", "data-testid": "signup-add" }, t("Sign up a caller"));
    add.addEventListener("click", () => { add.disabled = true; signUpCaller(e, (signupState.drafts[e.id] || "").trim()); });
    item.append(el("div", { class: "signup-add" }, name, add));
  }
  return item;
}

function signupItem(e, s) {
  const seated = s.status === "seated";
  const where = seated ? t("seat {n}", { n: s.seat }) : t("waiting list no. {n}", { n: s.position });
  const moved = signupState.moved.has(s.code);
  const item = el("li", { class: `signup ${seated ? "seated" : "waiting"}${moved ? " moved" : ""}`, "data-signup": s.code },
    el("strong", { class: "code" }, s.code_display), " ",
    s.name ? el("span", { class: "who-name" }, s.name) : "", " ",
    el("span", { class: seated ? "state good" : "state warn-text" }, where));
  if (moved) item.append(" ", el("span", { class: "state good" }, t("moved up")));
  if (s.attended_at) item.append(" ", el("span", { class: "state good" }, t("checked in")));
  item.append(confirmButton(t("Cancel sign-up"), t("Yes, cancel"), "signup-cancel", () => cancelSignup(e, s)));
  return item;
}

function eventsMessage(text, kind) {
  const m = $("events-message");
  m.textContent = text;
  m.className = `message ${kind || ""}`;
}

async function cancelSignup(e, s) {
  try {
    const answer = await send("DELETE", `/api/v1/events/${encodeURIComponent(e.id)}/signups/${encodeURIComponent(s.code)}`);
    let words = t("Cancelled {code}.", { code: s.code_display });
    if (answer.moved_up) {
      signupState.moved.add(answer.moved_up.code);
      words += " " + t("{code} moved up to seat {seat}.", { code: answer.moved_up.code_display, seat: answer.moved_up.seat });
    }
    eventsMessage(words, "good");
  } catch (err) { eventsMessage(err.refusal, "bad"); }
  refreshEvents();
}

async function signUpCaller(e, name) {
  try {
    const answer = await send("POST", `/api/v1/events/${encodeURIComponent(e.id)}/signups`,
                              name ? { name } : {}, { "Idempotency-Key": requestId() }, true);
    eventsMessage(answer.seat ? t("Signed up: {code}, seat {n}.", { code: answer.code_display, n: answer.seat })
                              : t("On the waiting list: {code}, no. {n}.", { code: answer.code_display, n: answer.waiting_place }),
                  "good");
    delete signupState.drafts[e.id];
  } catch (err) { eventsMessage(err.refusal, "bad"); }
  refreshEvents();
}

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
    } else if (topic === "events/today") {
      refreshEvents(); // a sign-up at a kiosk, a cancel at another desk: the counts follow
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

// GET /api/v1/events/feeds (docs/bookings.md): each What's on feed, and the events it could not read.
// Why, by the hub's code (server/events/feeds.py PROBLEMS); an unknown code shows the hub's English words.
const FEED_PROBLEMS = {
  bad_start: "Its start {value} is not a real date or time.",
  bad_end: "Its end {value} is not a real date or time.",
  bad_time: "Its {value} cannot be read.",
  no_start: "It has no start.",
  no_date: "It has no title or no date and time.",
};

async function refreshFeeds() {
  try {
    const response = await fetch("/api/v1/events/feeds", { credentials: "same-origin" });
    if (!response.ok) return;
    const feeds = (await response.json()).feeds || [];
    $("feeds-card").hidden = !feeds.length;
    $("feeds-h").textContent = t("Event feeds");
    $("feeds").replaceChildren(...feeds.map((f) => {
      const problems = f.problems || [];
      const bad = !f.ok || problems.length > 0;
      const item = el("li", { class: bad ? "device bad" : "device", "data-feed": f.name },
        el("span", { class: bad ? "dot off" : "dot on", "aria-hidden": "true" }), el("strong", {}, f.name), " ",
        el("span", { class: bad ? "state bad" : "state good" },
           bad ? t("needs attention") : t("{n} events read", { n: f.events })));
      if (f.error) item.append(el("span", { class: "alert" }, f.error));
      for (const p of problems) {
        item.append(el("span", { class: "alert", role: "alert", "data-problem": p.event },
                       "⚠ " + t("Not shown: {event} – {reason}", { event: p.event, reason:
                         FEED_PROBLEMS[p.code] ? t(FEED_PROBLEMS[p.code], { value: p.value }) : p.reason })));
      }
      return item;
    }));
  } catch (err) { /* keep the last list */ }
}

fillWords();
fillBookingWords();
fillBookingsDay();
render();
connectStream();
refreshDevices();
refreshBookings();
refreshFeeds();
refreshEvents();
loadSlots();
setInterval(refreshDevices, 10000);
setInterval(refreshFeeds, 60000);
setInterval(refreshBookings, 30000);
setInterval(refreshWaiting, 30000); // the minutes waited grow even when nothing changes

setInterval(refreshEvents, 30000);
