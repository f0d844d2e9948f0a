/* A feedback tablet by the exit: five big faces, five languages, thanks and reset.
   Set up once per tablet: open /feedback/?device=exit1&service=kvik#token=<the device's kiosk token>
   (the token is kept in this browser's localStorage and removed from the address).
   ?faces=3 shows three faces (sent as 1, 3 and 5). No personal data is sent: a number, and the service if set. */
"use strict";

const STRINGS = {
  da: { name: "Dansk", q: "Hvordan var dit besøg i dag?", labels: ["Meget dårligt", "Dårligt", "OK", "Godt", "Meget godt"],
        thanks: "Tak for din vurdering!", note: "Anonymt – vi gemmer kun dit valg.", error: "Det lykkedes ikke at sende. Prøv igen." },
  sv: { name: "Svenska", q: "Hur var ditt besök i dag?", labels: ["Mycket dåligt", "Dåligt", "Okej", "Bra", "Mycket bra"],
        thanks: "Tack för ditt omdöme!", note: "Anonymt – vi sparar bara ditt val.", error: "Det gick inte att skicka. Försök igen." },
  fi: { name: "Suomi", q: "Millainen oli käyntisi tänään?", labels: ["Erittäin huono", "Huono", "Kohtalainen", "Hyvä", "Erittäin hyvä"],
        thanks: "Kiitos palautteestasi!", note: "Nimetön – tallennamme vain valintasi.", error: "Lähetys epäonnistui. Yritä uudelleen." },
  nl: { name: "Nederlands", q: "Hoe was uw bezoek vandaag?", labels: ["Zeer slecht", "Slecht", "Gaat wel", "Goed", "Zeer goed"],
        thanks: "Bedankt voor uw beoordeling!", note: "Anoniem – we bewaren alleen uw keuze.", error: "Versturen is niet gelukt. Probeer het opnieuw." },
  en: { name: "English", q: "How was your visit today?", labels: ["Very bad", "Bad", "OK", "Good", "Very good"],
        thanks: "Thank you for your feedback!", note: "Anonymous – we only keep your choice.", error: "Could not send. Please try again." },
};
const COLORS = ["#d9534f", "#f0883e", "#f2c94c", "#8cc152", "#3aa55d"];
const RESET_MS = 5000;
const SVG = "http://www.w3.org/2000/svg";
const params = new URLSearchParams(location.search);
const DEFAULT_LANG = STRINGS[params.get("lang")] ? params.get("lang") : "da";
const THREE = params.get("faces") === "3";
const RATINGS = THREE ? [1, 3, 5] : [1, 2, 3, 4, 5];
let lang = DEFAULT_LANG;
let resetTimer = null;
let busy = false;

(function takeToken() {
  const m = location.hash.match(/token=([^&]+)/);
  if (m) {
    localStorage.setItem("vuoro_feedback_token", decodeURIComponent(m[1]));
    history.replaceState(null, "", location.pathname + location.search);
  }
})();

function s(tag, attrs) {
  const node = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
  return node;
}

function face(rating) {
  // rating 1..5 → mouth from a frown to a big smile
  const svg = s("svg", { viewBox: "0 0 100 100", "aria-hidden": "true" });
  svg.append(s("circle", { cx: 50, cy: 50, r: 46, fill: COLORS[rating - 1], stroke: "rgba(0,0,0,.25)", "stroke-width": 2 }));
  svg.append(s("circle", { cx: 35, cy: 40, r: 6, fill: "#1d2330" }), s("circle", { cx: 65, cy: 40, r: 6, fill: "#1d2330" }));
  const curve = [-14, -7, 0, 9, 17][rating - 1];
  svg.append(s("path", { d: `M 30 ${68 - curve / 2} Q 50 ${68 + curve * 1.2} 70 ${68 - curve / 2}`, fill: "none", stroke: "#1d2330", "stroke-width": 5, "stroke-linecap": "round" }));
  return svg;
}

function render() {
  const t = STRINGS[lang];
  document.documentElement.lang = lang;
  document.getElementById("question").textContent = t.q;
  document.getElementById("note").textContent = t.note;
  const faces = document.getElementById("faces");
  faces.replaceChildren();
  for (const r of RATINGS) {
    const b = document.createElement("button");
    b.type = "button";
    b.dataset.rating = r;
    const label = document.createElement("span");
    label.textContent = t.labels[r - 1];
    b.append(face(r), label);
    b.setAttribute("aria-label", t.labels[r - 1]);
    b.addEventListener("click", () => send(r));
    faces.append(b);
  }
  const nav = document.getElementById("languages");
  nav.replaceChildren();
  for (const [code, words] of Object.entries(STRINGS)) {
    const b = document.createElement("button");
    b.type = "button";
    b.lang = code;
    b.textContent = words.name;
    b.setAttribute("aria-pressed", String(code === lang));
    b.addEventListener("click", () => { lang = code; render(); });
    nav.append(b);
  }
}

async function send(rating) {
  if (busy) return;
  busy = true;
  const error = document.getElementById("error");
  error.hidden = true;
  const token = localStorage.getItem("vuoro_feedback_token");
  const body = { rating, faces: THREE ? 3 : 5 };
  if (params.get("service")) body.service = params.get("service");
  if (params.get("device")) body.device = params.get("device");
  try {
    const res = await fetch("/api/v1/feedback", {
      method: "POST", credentials: "omit",
      headers: { "Content-Type": "application/json", ...(token ? { Authorization: "Bearer " + token } : {}) },
      body: JSON.stringify(body),
    });
    // 429: someone tapping again and again; thank them all the same, nothing more is counted.
    if (!res.ok && res.status !== 429) throw new Error(String(res.status));
    thank(rating);
  } catch (e) {
    error.textContent = STRINGS[lang].error + (token ? "" : " (this screen has no token: /feedback/#token=…)");
    error.hidden = false;
  } finally {
    busy = false;
  }
}

function thank(rating) {
  document.getElementById("ask").hidden = true;
  document.getElementById("thanks").hidden = false;
  document.getElementById("thanks-face").replaceChildren(face(rating));
  document.getElementById("thanks-text").textContent = STRINGS[lang].thanks;
  clearTimeout(resetTimer);
  resetTimer = setTimeout(reset, RESET_MS);
}

function reset() {
  lang = DEFAULT_LANG;
  document.getElementById("thanks").hidden = true;
  document.getElementById("ask").hidden = false;
  document.getElementById("error").hidden = true;
  render();
}

document.addEventListener("DOMContentLoaded", render);
