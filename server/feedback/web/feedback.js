/* A feedback tablet by the exit: five big faces, five languages, thanks and reset.
   Set up once per tablet: open /feedback/?device=exit1&service=kvik#token=<the device's kiosk token>
   (the token is kept in this browser's localStorage and removed from the address).
   ?faces=3 shows three faces (sent as 1, 3 and 5). No personal data is sent: a number, and the service if set. */
"use strict";

const STRINGS = {
  da: { name: "Dansk", q: "Hvordan var dit besøg i dag?", labels: ["Meget dårligt", "Dårligt", "OK", "Godt", "Meget godt"],
        thanks: "Tak for din vurdering!", note: "Anonymt – vi gemmer kun dit valg.", error: "Det lykkedes ikke at sende. Prøv igen.",
        unset: "Denne skærm er ikke sat op endnu og kan ikke modtage vurderinger.",
        how: "Personale: åbn én gang på denne tablet /feedback/?device=NAVN#token=KIOSK-TOKEN (se docs/statistics.md)." },
  sv: { name: "Svenska", q: "Hur var ditt besök i dag?", labels: ["Mycket dåligt", "Dåligt", "Okej", "Bra", "Mycket bra"],
        thanks: "Tack för ditt omdöme!", note: "Anonymt – vi sparar bara ditt val.", error: "Det gick inte att skicka. Försök igen.",
        unset: "Den här skärmen är inte inställd än och kan inte ta emot omdömen.",
        how: "Personal: öppna en gång på den här surfplattan /feedback/?device=NAMN#token=KIOSK-TOKEN (se docs/statistics.md)." },
  fi: { name: "Suomi", q: "Millainen oli käyntisi tänään?", labels: ["Erittäin huono", "Huono", "Kohtalainen", "Hyvä", "Erittäin hyvä"],
        thanks: "Kiitos palautteestasi!", note: "Nimetön – tallennamme vain valintasi.", error: "Lähetys epäonnistui. Yritä uudelleen.",
        unset: "Tätä näyttöä ei ole vielä otettu käyttöön, eikä se voi ottaa vastaan palautetta.",
        how: "Henkilökunta: avaa kerran tällä tabletilla /feedback/?device=NIMI#token=KIOSKIN-TUNNISTE (ks. docs/statistics.md)." },
  nl: { name: "Nederlands", q: "Hoe was uw bezoek vandaag?", labels: ["Zeer slecht", "Slecht", "Gaat wel", "Goed", "Zeer goed"],
        thanks: "Bedankt voor uw beoordeling!", note: "Anoniem – we bewaren alleen uw keuze.", error: "Versturen is niet gelukt. Probeer het opnieuw.",
        unset: "Dit scherm is nog niet ingesteld en kan geen beoordelingen ontvangen.",
        how: "Medewerkers: open eenmaal op deze tablet /feedback/?device=NAAM#token=KIOSKTOKEN (zie docs/statistics.md)." },
  en: { name: "English", q: "How was your visit today?", labels: ["Very bad", "Bad", "OK", "Good", "Very good"],
        thanks: "Thank you for your feedback!", note: "Anonymous – we only keep your choice.", error: "Could not send. Please try again.",
        unset: "This screen is not set up yet and cannot take ratings.",
        how: "Staff: open /feedback/?device=NAME#token=KIOSK-TOKEN once on this tablet (see docs/statistics.md)." },
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

// Without a token every tap would fail: say so at once, in words, instead of showing faces that cannot work.
function setUp() { return Boolean(localStorage.getItem("vuoro_feedback_token")); }

function render() {
  const t = STRINGS[lang];
  document.documentElement.lang = lang;
  document.getElementById("not-set-up").hidden = setUp();
  document.getElementById("ask").hidden = !setUp();
  document.getElementById("not-set-up-text").textContent = t.unset;
  document.getElementById("not-set-up-how").textContent = t.how;
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

function requestId() {
  const bytes = new Uint8Array(12);
  crypto.getRandomValues(bytes);
  return "rating-" + Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

// A rating whose answer never came (the connection ended as it went out: a hub restart, an idle connection the hub
// had just closed) is sent once more with the SAME Idempotency-Key: the hub counts it once either way
// (docs/protocol.md, "Connections"), and the visitor is thanked instead of asked to tap again.
async function fetchOnceMore(url, init) {
  try {
    return await fetch(url, init);
  } catch (err) {
    await new Promise((resolve) => setTimeout(resolve, 300));
    return fetch(url, init);
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
    const res = await fetchOnceMore("/api/v1/feedback", {
      method: "POST", credentials: "omit",
      headers: { "Content-Type": "application/json", "Idempotency-Key": requestId(),
                 ...(token ? { Authorization: "Bearer " + token } : {}) },
      body: JSON.stringify(body),
    });
    // 429: someone tapping again and again; thank them all the same, nothing more is counted.
    if (res.status === 401 || res.status === 403) {  // the token was wrong or withdrawn: this screen needs setting up
      localStorage.removeItem("vuoro_feedback_token");
      render();
      return;
    }
    if (!res.ok && res.status !== 429) throw new Error(String(res.status));
    thank(rating);
  } catch (e) {
    error.textContent = STRINGS[lang].error;
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
  document.getElementById("error").hidden = true;
  render();
}

document.addEventListener("DOMContentLoaded", render);
