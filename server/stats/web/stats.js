/* Vuoro statistics page: fetches /api/v1/stats/report with the staff login (cookie) or a pasted
   API token, and draws the charts as SVG. No libraries, no build step. */
"use strict";

const SVG = "http://www.w3.org/2000/svg";
const PALETTE = ["#1f5fbf", "#e08a1e", "#2e9d5b", "#8e44ad", "#c0392b", "#16a2b8", "#7f8c8d", "#d35400"];
const TOKEN_KEY = "vuoro_stats_token";
const $ = (id) => document.getElementById(id);
// The page's words come with it (server/stats/routes.py: the staff page's language choice and catalogs).
const boot = JSON.parse(document.getElementById("boot").textContent);
const LOCALE = { da: "da-DK", sv: "sv-SE", fi: "fi-FI", nl: "nl-NL", en: "en-GB" }[boot.language] || "en-GB";
function t(key, vars) {
  let text = boot.strings[key] || key;
  for (const [name, value] of Object.entries(vars || {})) text = text.split(`{${name}}`).join(String(value));
  return text;
}
let lastBody = null;
let refreshTimer = null;

function el(tag, attrs = {}, ...children) {
  const node = tag.startsWith("svg:") ? document.createElementNS(SVG, tag.slice(4)) : document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) if (v !== null && v !== undefined) node.setAttribute(k, v);
  for (const c of children) node.append(c instanceof Node ? c : document.createTextNode(String(c)));
  return node;
}

function localDay(d) {
  const z = (n) => String(n).padStart(2, "0");
  return `${d.getFullYear()}-${z(d.getMonth() + 1)}-${z(d.getDate())}`;
}

function minutes(s) {
  return s === null || s === undefined ? "–" : t("{n} min", { n: (s / 60).toLocaleString(LOCALE, { minimumFractionDigits: 1, maximumFractionDigits: 1 }) });
}
function pct(x) { return x === null || x === undefined ? "–" : (Math.round(x * 1000) / 10).toLocaleString(LOCALE) + " %"; }
function num(x) { return x === null || x === undefined ? "–" : x.toLocaleString(LOCALE); }

function authHeaders() {
  const token = sessionStorage.getItem(TOKEN_KEY);
  return token ? { Authorization: "Bearer " + token } : {};
}

async function fetchApi(path) {
  const res = await fetch(path, { credentials: "same-origin", headers: authHeaders() });
  if (res.status === 401) { showLogin(""); throw new Error("login"); }
  if (!res.ok) {
    let message = res.statusText;
    try { message = (await res.json()).error.message; } catch (e) { /* not JSON */ }
    if (res.status === 403) showLogin(message);
    throw new Error(message);
  }
  return res;
}

function showLogin(message) {
  $("login").hidden = false;
  $("figures").hidden = true;
  $("login-error").textContent = message || "";
}

function period() { return { from: $("from").value, to: $("to").value }; }

async function load() {
  const { from, to } = period();
  $("status").textContent = t("Loading…");
  clearTimeout(refreshTimer);
  try {
    const res = await fetchApi(`/api/v1/stats/report?from=${from}&to=${to}`);
    const body = await res.json();
    lastBody = body;
    $("login").hidden = true;
    $("figures").hidden = false;
    render(body);
    $("status").textContent = t("Updated {time}", { time: body.generated_at.slice(11, 16) });
    if (body.now) refreshTimer = setTimeout(load, 30000); // today: keep it live
  } catch (e) {
    $("status").textContent = e.message === "login" ? "" : t("Could not load: {reason}", { reason: e.message });
  }
}

function serviceName(body, id) {
  const s = body.services[id];
  return s ? (s.names[boot.language] || s.names.en || s.names[Object.keys(s.names)[0]] || id) : id;
}

function render(body) {
  $("site").textContent = body.site_name;
  $("tz").textContent = body.timezone;
  document.title = `${t("Statistics")} ${body.from} – ${body.to} – ${body.site_name}`;
  const T = body.total;
  const tiles = $("tiles");
  tiles.replaceChildren();
  const items = [
    ["Tickets", num(T.issued)], ["Served", num(T.served)], ["No-shows", num(T.no_show)],
    ["Expired uncalled", num(T.expired)], ["Median wait", minutes(T.wait_median_s)],
    ["90th pct. wait", minutes(T.wait_p90_s)], ["Longest wait", minutes(T.wait_max_s)],
    ["Median service", minutes(T.service_median_s)], ["Service level", pct(T.service_level)],
    ["Bookings kept", `${num(T.bookings_kept)} / ${num(T.booking)}`],
    // how the tickets were taken (tickets.channel), and who gave up their place from the phone
    ["From the kiosk", num(T.from_kiosk)], ["From a phone", num(T.from_phone)],
    ["Given at the desk", num(T.from_staff)], ["Booking check-ins", num(T.from_booking)],
    ["Left the queue", num(T.left)],
    ["Feedback", T.feedback_count ? `${num(T.feedback_mean)} / 5` : "–"],
  ];
  for (const [label, value] of items) tiles.append(el("div", { class: "tile" }, el("div", { class: "value" }, value), el("div", { class: "label" }, t(label))));

  const now = $("now");
  now.hidden = !body.now;
  if (body.now) {
    now.replaceChildren(el("span", {}, t("Now:")), el("span", {}, el("strong", {}, num(body.now.waiting)), " ", t("waiting")),
      el("span", {}, el("strong", {}, num(body.now.being_served)), " ", t("being served")),
      el("span", {}, t("longest wait now"), " ", el("strong", {}, minutes(body.now.longest_wait_now_s))));
  }
  waitChart(body);
  dayChart(body);
  levelChart(body);
  feedbackChart(body);
  table($("table-service"), body.report.service, "service", (g) => serviceName(body, g.service), body);
  table($("table-counter"), body.report.counter, "counter", (g) => g.counter ? (body.counters[g.counter] || g.counter) : t("(never called)"), body);
  devicesTable(body);
  extraTable(body);
}

// -- charts -----------------------------------------------------------------------------------

// A chart's text alternative (WCAG 1.1.1): its caption and every value it draws, in words, as its name.
function described(svg, caption, lines) {
  svg.setAttribute("aria-label", `${$(caption).textContent}. ${lines.join("; ")}.`);
  return svg;
}

function frame(width, height, margin, yMax, yTicks, yFormat) {
  const svg = el("svg:svg", { viewBox: `0 0 ${width} ${height}`, role: "img" });
  const plotH = height - margin.top - margin.bottom;
  for (let i = 0; i <= yTicks; i++) {
    const v = (yMax / yTicks) * i;
    const y = margin.top + plotH - (v / yMax) * plotH;
    svg.append(el("svg:line", { class: i ? "grid" : "axis", x1: margin.left, x2: width - margin.right, y1: y, y2: y }));
    svg.append(el("svg:text", { x: margin.left - 6, y: y + 4, "text-anchor": "end" }, yFormat(v)));
  }
  return svg;
}

function niceMax(v) {
  if (!v || v <= 0) return 1;
  const p = Math.pow(10, Math.floor(Math.log10(v)));
  for (const m of [1, 2, 2.5, 5, 10]) if (m * p >= v) return m * p;
  return 10 * p;
}

function waitChart(body) {
  const box = document.querySelector("#chart-wait .chart");
  const groups = body.report.hour.filter((g) => g.called > 0);
  if (!groups.length) { box.replaceChildren(el("p", { class: "empty" }, t("No one was called in this period."))); return; }
  const lo = Math.min(...groups.map((g) => g.hour)), hi = Math.max(...groups.map((g) => g.hour));
  const byHour = Object.fromEntries(groups.map((g) => [g.hour, g]));
  const W = 640, H = 280, M = { top: 16, right: 12, bottom: 34, left: 48 };
  const yMax = niceMax(Math.max(...groups.map((g) => g.wait_p90_s)) / 60);
  const svg = frame(W, H, M, yMax, ticks(yMax), (v) => t("{n} min", { n: (+v.toFixed(1)).toLocaleString(LOCALE) }));
  const n = hi - lo + 1, slot = (W - M.left - M.right) / n, plotH = H - M.top - M.bottom;
  const y = (s) => M.top + plotH - (s / 60 / yMax) * plotH;
  for (let h = lo; h <= hi; h++) {
    const x = M.left + (h - lo) * slot;
    svg.append(el("svg:text", { x: x + slot / 2, y: H - M.bottom + 15, "text-anchor": "middle" }, String(h).padStart(2, "0")));
    const g = byHour[h];
    if (!g) continue;
    svg.append(el("svg:rect", { x: x + slot * 0.2, width: slot * 0.6, y: y(g.wait_median_s), height: M.top + plotH - y(g.wait_median_s), fill: PALETTE[0], rx: 2 },
      el("svg:title", {}, hourWords(g))));
    svg.append(el("svg:line", { x1: x + slot * 0.15, x2: x + slot * 0.85, y1: y(g.wait_p90_s), y2: y(g.wait_p90_s), stroke: PALETTE[1], "stroke-width": 3 }));
  }
  svg.append(el("svg:text", { x: M.left + (W - M.left - M.right) / 2, y: H - 4, "text-anchor": "middle" }, t("hour of day (local, when the ticket was taken)")));
  described(svg, "cap-wait", groups.map(hourWords));
  box.replaceChildren(svg, legend([[t("median wait"), PALETTE[0]], [t("90th percentile"), PALETTE[1]]]));
}

function hourWords(g) {
  return t("{hour}:00 – median {median}, 90th percentile {p90}, {n} called",
    { hour: String(g.hour).padStart(2, "0"), median: minutes(g.wait_median_s), p90: minutes(g.wait_p90_s), n: g.called });
}

function legend(items) {
  // colours through the CSSOM: the page's CSP forbids inline style attributes
  return el("div", { class: "legend" }, ...items.map(([label, color]) => {
    const swatch = el("i");
    swatch.style.background = color;
    return el("span", {}, swatch, label);
  }));
}

function ticks(yMax) { return Number.isInteger(yMax / 4) || yMax < 4 ? 4 : 5; }

function smallFace(rating, cx, cy, r) {
  // the same faces as the feedback tablet (no emoji font needed)
  const g = el("svg:g", {});
  const colors = ["#d9534f", "#f0883e", "#f2c94c", "#8cc152", "#3aa55d"];
  g.append(el("svg:circle", { cx, cy, r, fill: colors[rating - 1], stroke: "rgba(0,0,0,.25)" }));
  g.append(el("svg:circle", { cx: cx - r * 0.3, cy: cy - r * 0.2, r: r * 0.12, fill: "#1d2330" }));
  g.append(el("svg:circle", { cx: cx + r * 0.3, cy: cy - r * 0.2, r: r * 0.12, fill: "#1d2330" }));
  const curve = [-14, -7, 0, 9, 17][rating - 1] / 46 * r;
  const y0 = cy + r * 0.36;
  g.append(el("svg:path", { d: `M ${cx - r * 0.43} ${y0 - curve / 2} Q ${cx} ${y0 + curve * 1.2} ${cx + r * 0.43} ${y0 - curve / 2}`, fill: "none", stroke: "#1d2330", "stroke-width": r * 0.1, "stroke-linecap": "round" }));
  return g;
}

function eachDay(from, to) {
  const out = [];
  for (let d = new Date(from + "T12:00:00"); localDay(d) <= to; d.setDate(d.getDate() + 1)) out.push(localDay(d));
  return out;
}

function dayChart(body) {
  const box = document.querySelector("#chart-day .chart");
  const services = Object.keys(body.services);
  let keys = eachDay(body.from, body.to);
  const monthly = keys.length > 92;
  const bucket = (day) => (monthly ? day.slice(0, 7) : day);
  if (monthly) keys = [...new Set(keys.map(bucket))];
  $("cap-day").textContent = monthly ? t("Tickets per month, by service") : t("Tickets per day, by service");
  const counts = Object.fromEntries(keys.map((k) => [k, Object.fromEntries(services.map((s) => [s, 0]))]));
  for (const g of body.report["day,service"]) if (counts[bucket(g.day)]) counts[bucket(g.day)][g.service] += g.issued;
  const totals = keys.map((k) => services.reduce((a, s) => a + counts[k][s], 0));
  if (!totals.some((x) => x)) { box.replaceChildren(el("p", { class: "empty" }, t("No tickets in this period."))); return; }
  const W = 640, H = 280, M = { top: 16, right: 12, bottom: 40, left: 48 };
  const yMax = niceMax(Math.max(...totals));
  const svg = frame(W, H, M, yMax, ticks(yMax), (v) => String(Math.round(v)));
  const slot = (W - M.left - M.right) / keys.length, plotH = H - M.top - M.bottom;
  const every = Math.ceil(keys.length / 14);
  keys.forEach((k, i) => {
    let base = M.top + plotH;
    const x = M.left + i * slot;
    services.forEach((s, j) => {
      const h = (counts[k][s] / yMax) * plotH;
      if (h > 0) svg.append(el("svg:rect", { x: x + slot * 0.12, width: Math.max(1, slot * 0.76), y: base - h, height: h, fill: PALETTE[j % PALETTE.length] },
        el("svg:title", {}, `${k} ${serviceName(body, s)}: ${counts[k][s]}`)));
      base -= h;
    });
    if (i % every === 0) {
      const label = monthly ? k : k.slice(5);
      svg.append(el("svg:text", { x: x + slot / 2, y: H - M.bottom + 15, "text-anchor": "middle" }, label));
    }
  });
  svg.append(el("svg:text", { x: M.left + (W - M.left - M.right) / 2, y: H - 4, "text-anchor": "middle" }, monthly ? t("tickets per month") : t("tickets per day")));
  described(svg, "cap-day", keys.map((k, i) => totals[i] ? `${k}: ` + services.filter((s) => counts[k][s])
    .map((s) => `${serviceName(body, s)} ${num(counts[k][s])}`).join(", ") : "").filter(Boolean));
  box.replaceChildren(svg, legend(services.map((s, j) => [serviceName(body, s), PALETTE[j % PALETTE.length]])));
}

function levelChart(body) {
  const box = document.querySelector("#chart-level .chart");
  const groups = body.report.service.filter((g) => g.service_level !== null);
  if (!groups.length) { box.replaceChildren(el("p", { class: "empty" }, t("No service level yet in this period."))); return; }
  const W = 640, rowH = 34, M = { top: 10, right: 70, bottom: 26, left: 240 }  // room for a Danish or Finnish service name;
  const H = M.top + M.bottom + rowH * groups.length;
  const svg = el("svg:svg", { viewBox: `0 0 ${W} ${H}`, role: "img" });
  const plotW = W - M.left - M.right;
  for (let p = 0; p <= 100; p += 25) {
    const x = M.left + (p / 100) * plotW;
    svg.append(el("svg:line", { class: p ? "grid" : "axis", x1: x, x2: x, y1: M.top, y2: H - M.bottom }));
    svg.append(el("svg:text", { x, y: H - M.bottom + 15, "text-anchor": "middle" }, `${p} %`));
  }
  groups.forEach((g, i) => {
    const y = M.top + i * rowH;
    const target = body.target_min ?? body.services[g.service]?.target_wait_min;
    const color = g.service_level >= 0.8 ? "#2e9d5b" : g.service_level >= 0.6 ? "#e0a11e" : "#c0392b";
    svg.append(el("svg:text", { x: M.left - 8, y: y + rowH / 2 + 4, "text-anchor": "end", class: "value-label" }, `${serviceName(body, g.service)} (≤ ${target} min)`));
    svg.append(el("svg:rect", { x: M.left, y: y + 6, width: plotW * g.service_level, height: rowH - 12, fill: color, rx: 2 },
      el("svg:title", {}, levelWords(body, g))));
    svg.append(el("svg:text", { x: M.left + plotW * g.service_level + 6, y: y + rowH / 2 + 4, class: "value-label" }, pct(g.service_level)));
  });
  described(svg, "cap-level", groups.map((g) => `${serviceName(body, g.service)}: ${pct(g.service_level)}, ${levelWords(body, g)}`));
  box.replaceChildren(svg, el("div", { class: "legend" }, t("Called within the service's target wait, of all called or expired uncalled. Green ≥ 80 %, amber ≥ 60 %.")));
}

function levelWords(body, g) {
  const target = body.target_min ?? body.services[g.service]?.target_wait_min;
  return t("{n} of {total} within {target} min", { n: g.within_target, total: g.called + g.expired, target });
}

function feedbackChart(body) {
  const box = document.querySelector("#chart-feedback .chart");
  const r = body.total.feedback_ratings;
  const total = r.reduce((a, b) => a + b, 0);
  if (!total) { box.replaceChildren(el("p", { class: "empty" }, t("No ratings in this period."))); return; }
  const colors = ["#c0392b", "#e67e22", "#f1c40f", "#7dbb42", "#2e9d5b"];
  const W = 640, H = 240, M = { top: 18, right: 12, bottom: 40, left: 48 };
  const yMax = niceMax(Math.max(...r));
  const svg = frame(W, H, M, yMax, ticks(yMax), (v) => String(Math.round(v)));
  const slot = (W - M.left - M.right) / 5, plotH = H - M.top - M.bottom;
  r.forEach((n, i) => {
    const x = M.left + i * slot, h = (n / yMax) * plotH;
    svg.append(el("svg:rect", { x: x + slot * 0.25, width: slot * 0.5, y: M.top + plotH - h, height: h, fill: colors[i], rx: 2 }));
    svg.append(el("svg:text", { x: x + slot / 2, y: M.top + plotH - h - 4, "text-anchor": "middle", class: "value-label" }, `${n} (${Math.round((n / total) * 100)} %)`));
    svg.append(smallFace(i + 1, x + slot / 2, H - M.bottom + 20, 14));
  });
  const faces = ["very bad", "bad", "OK", "good", "very good"];
  described(svg, "cap-feedback", r.map((n, i) => `${t(faces[i])}: ${num(n)}`));
  box.replaceChildren(svg, el("div", { class: "legend" }, t("{n} ratings, mean {mean} of 5", { n: num(total), mean: num(body.total.feedback_mean) })));
}

// -- tables -----------------------------------------------------------------------------------

function table(box, groups, key, name, body) {
  if (!groups.length) { box.replaceChildren(el("p", { class: "empty" }, t("Nothing in this period."))); return; }
  const cols = [["Tickets", "issued", num], ["Served", "served", num], ["No-show", "no_show", num], ["Expired", "expired", num], ["Left the queue", "left", num],
    ["Transferred", "transferred", num], ["Median wait", "wait_median_s", minutes], ["90th pct.", "wait_p90_s", minutes],
    ["Longest", "wait_max_s", minutes], ["Median service", "service_median_s", minutes], ["Service level", "service_level", pct]];
  if (key === "service") cols.push(["Feedback", "feedback_mean", (x) => (x === null ? "–" : num(x))]);
  const head = el("tr", {}, el("th", { scope: "col" }, t(key === "service" ? "Service" : "Desk")), ...cols.map((c) => el("th", { scope: "col" }, t(c[0]))));
  const rows = groups.filter((g) => g.issued).map((g) => el("tr", {}, el("td", {}, name(g)), ...cols.map((c) => el("td", {}, c[2](g[c[1]])))));
  rows.push(el("tr", {}, el("th", { scope: "row" }, t("Total")), ...cols.map((c) => el("td", { class: "total" }, c[2](body.total[c[1]])))));
  box.replaceChildren(el("table", {}, el("thead", {}, head), el("tbody", {}, ...rows)));
}

function duration(s) {
  if (!s) return "0";
  const h = Math.floor(s / 3600), m = Math.round((s % 3600) / 60);
  return h ? t("{h} h {m} min", { h, m }) : t("{n} min", { n: m });
}

function devicesTable(body) {
  const box = $("table-devices");
  if (!body.devices.length) { box.replaceChildren(el("p", { class: "empty" }, t("No device status recorded in this period."))); return; }
  const head = el("tr", {}, ...["Device", "Kind", "Offline", "Outages", "Printer unusable", "Available"].map((h) => el("th", { scope: "col" }, t(h))));
  const kinds = { kiosk: "Kiosk", display: "Screen", button: "Button box", printer: "Printer", hub: "Hub" };
  const rows = body.devices.map((d) => el("tr", {}, el("td", {}, d.device), el("td", {}, t(kinds[d.kind] || d.kind)), el("td", {}, duration(d.offline_s)),
    el("td", {}, d.outages), el("td", {}, duration(d.printer_down_s)), el("td", {}, pct(d.availability))));
  box.replaceChildren(el("table", {}, el("thead", {}, head), el("tbody", {}, ...rows)));
}

function extraTable(body) {
  const rows = [];
  // every label in words: a booking's status as staff say it, never the stored code (checked_in)
  const statuses = { booked: "Bookings not checked in (yet)", checked_in: "Bookings checked in",
                     no_show: "Bookings not shown up", cancelled: "Bookings cancelled" };
  if (body.bookings) for (const [status, n] of Object.entries(body.bookings.by_status)) rows.push([t(statuses[status] || status), n]);
  if (body.events) {
    rows.push([t("Events"), body.events.events], [t("Sign-ups"), body.events.signups]);
    if (body.events.attended !== null) rows.push([t("Attended"), body.events.attended]);
  }
  $("extra").hidden = !rows.length;
  $("table-extra").replaceChildren(el("table", {}, el("tbody", {}, ...rows.map(([a, b]) => el("tr", {}, el("td", {}, a), el("td", {}, num(b)))))));
}

// -- downloads and controls -------------------------------------------------------------------------

async function download(kind, by) {
  const { from, to } = period();
  const sep = $("semicolon").checked ? "semicolon" : "comma";
  const path = kind === "tickets" ? `/api/v1/stats/tickets.csv?from=${from}&to=${to}&sep=${sep}`
    : `/api/v1/stats/summary.csv?from=${from}&to=${to}&by=${by}&sep=${sep}`;
  try {
    const res = await fetchApi(path);
    const blob = await res.blob();
    const a = el("a", { href: URL.createObjectURL(blob), download: `vuoro-${kind}${by ? "-" + by.replace(",", "-") : ""}-${from}-${to}.csv` });
    document.body.append(a);
    a.click();
    a.remove();
  } catch (e) { $("status").textContent = t("Could not download: {reason}", { reason: e.message }); }
}

function setRange(range) {
  const today = new Date();
  let from = new Date(today), to = new Date(today);
  if (range === "7") from.setDate(today.getDate() - 6);
  if (range === "month") from = new Date(today.getFullYear(), today.getMonth(), 1);
  if (range === "lastmonth") { from = new Date(today.getFullYear(), today.getMonth() - 1, 1); to = new Date(today.getFullYear(), today.getMonth(), 0); }
  if (range === "year") from = new Date(today.getFullYear(), 0, 1);
  $("from").value = localDay(from);
  $("to").value = localDay(to);
}

document.addEventListener("DOMContentLoaded", () => {
  const params = new URLSearchParams(location.search);
  setRange("today");
  if (params.get("from")) $("from").value = params.get("from");
  if (params.get("to")) $("to").value = params.get("to");
  $("period").addEventListener("submit", (e) => { e.preventDefault(); history.replaceState(null, "", `?from=${$("from").value}&to=${$("to").value}`); load(); });
  for (const b of document.querySelectorAll("[data-range]")) b.addEventListener("click", () => { setRange(b.dataset.range); $("period").requestSubmit(); });
  for (const b of document.querySelectorAll("[data-csv]")) b.addEventListener("click", () => download(b.dataset.csv, b.dataset.by));
  $("token-form").addEventListener("submit", (e) => {
    e.preventDefault();
    sessionStorage.setItem(TOKEN_KEY, $("token").value.trim());
    $("token").value = "";
    load();
  });
  load();
});
