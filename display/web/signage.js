/* Vuoro web signage and the "your place" page. Plain JS, no build step, no CDN.
 *
 * The hub's GET /api/v1/stream (Server-Sent Events) sends every retained
 * state first, then changes:
 *   event: state  data: {"topic": "queue/kvik/state", "payload": {...}}
 *   event: call   data: {<call payload>}
 * EventSource reconnects by itself after a blip; on each (re)connect the hub
 * sends the full state again, so the page is never stale for long. While the
 * stream is down the last picture stays, with a discreet "offline" mark.
 * Every text from a payload goes in through textContent (never innerHTML).
 *
 * Payloads are read in one place, read() below, against contract.json: the
 * contract's description written from vuoro/payloads.py (python -m
 * vuoro.payloads). It says which topic carries which payload and each
 * payload's fields; a payload that does not fit is dropped, and a read of a
 * field the contract does not define is logged and counted in
 * Vuoro.misreads (a test fails on it). */
(function () {
  "use strict";
  var LANGS = ["da", "sv", "fi", "nl", "en"];
  var params = new URLSearchParams(location.search);
  var lang = params.get("lang");
  if (LANGS.indexOf(lang) < 0) {
    var nav = (navigator.language || "da").slice(0, 2);
    lang = LANGS.indexOf(nav) >= 0 ? nav : "da";
  }
  document.documentElement.lang = lang;
  var hubBase = params.get("hub") || location.origin;
  var strings = {};

  function t(msgid, values, inLang) {
    var table = strings[inLang || lang];
    var text = (table && table[msgid]) || msgid;
    Object.keys(values || {}).forEach(function (k) { text = text.split("{" + k + "}").join(String(values[k])); });
    return text;
  }
  function $(id) { return document.getElementById(id); }
  function list(param) {
    return (params.get(param) || "").split(",").map(function (s) { return s.trim(); }).filter(Boolean);
  }
  function el(tag, cls, text) {
    var node = document.createElement(tag);
    if (cls) node.className = cls;
    if (text !== undefined && text !== null) node.textContent = text;
    return node;
  }
  function loadStrings() {
    return Promise.all([
      fetch("strings.json").then(function (r) { return r.json(); })
        .then(function (json) { strings = json; }).catch(function () { strings = {}; }),
      fetch("contract.json").then(function (r) { return r.json(); }).then(function (json) { contract = json; })
    ]);
  }

  // -- the contract: every payload is read here, nowhere else -------------------
  var contract = { schema_version: 1, routes: [], kinds: {} };
  var misreads = [];
  var IS = {
    string: function (v) { return typeof v === "string"; },
    integer: function (v) { return Number.isInteger(v); },
    number: function (v) { return typeof v === "number" && isFinite(v); },
    boolean: function (v) { return typeof v === "boolean"; },
    array: function (v) { return Array.isArray(v); },
    object: function (v) { return v !== null && typeof v === "object" && !Array.isArray(v); }
  };
  // Names a program reads off any object without meaning a field (JSON.stringify, promises, the console).
  var NOT_FIELDS = ["toJSON", "then", "constructor", "length", "hasOwnProperty", "toString", "valueOf"];
  function defines(fields, name) { return Object.prototype.hasOwnProperty.call(fields, name); }

  function fits(desc, value) {
    if (!IS[desc.type](value)) return false;
    if (desc.items) return value.every(function (item) { return fits(desc.items, item); });
    if (!desc.fields) return true;
    return Object.keys(desc.fields).every(function (name) {
      var field = desc.fields[name], v = value[name];
      return v === undefined || v === null ? !field.required : fits(field, v);
    });
  }
  function watched(where, desc, value) {
    // The payload as the page sees it: a read of a field the contract does not define is counted.
    if (value === null || value === undefined) return value;
    if (desc.items) return value.map(function (item) { return watched(where + "[]", desc.items, item); });
    if (!desc.fields) return value;
    var copy = {};
    Object.keys(value).forEach(function (name) {
      var field = defines(desc.fields, name) ? desc.fields[name] : null;
      copy[name] = field ? watched(where + "." + name, field, value[name]) : value[name];
    });
    return new Proxy(copy, { get: function (target, name) {
      if (typeof name === "string" && !defines(desc.fields, name) && NOT_FIELDS.indexOf(name) < 0) {
        misreads.push(where + "." + name);
        console.error("signage.js reads " + where + "." + name + ", which the contract does not define");
      }
      return target[name];
    } });
  }
  function route(topic) {
    // The contract's kind for a topic suffix ("+" is one id), and that id.
    var parts = topic.split("/");
    for (var i = 0; i < contract.routes.length; i++) {
      var pattern = contract.routes[i].topic.split("/"), id = null;
      if (pattern.length !== parts.length) continue;
      var match = pattern.every(function (p, j) { if (p === "+") id = parts[j]; return p === "+" || p === parts[j]; });
      if (match) return { kind: contract.routes[i].kind, key: contract.routes[i].key, id: id };
    }
    return null;
  }
  function read(topic, payload) {
    // {kind, id, payload} for a payload that fits the contract, or null (a newer schema is not guessed at).
    var where = route(topic);
    if (!where || !IS.object(payload) || (typeof payload.v === "number" && payload.v > contract.schema_version)) {
      return null;
    }
    var desc = { type: "object", fields: contract.kinds[where.kind] };
    if (!fits(desc, payload) || (where.key && payload[where.key] !== where.id)) {
      console.warn("dropped a " + where.kind + " that does not fit the contract", payload);
      return null;
    }
    return { kind: where.kind, id: where.id, payload: watched(where.kind, desc, payload) };
  }

  function connect(onState, onCall, onLink) {
    var source = new EventSource(new URL("/api/v1/stream", hubBase).toString());
    source.onopen = function () { onLink(true); };
    source.onerror = function () {
      onLink(false);
      // EventSource retries by itself after a dropped line, but gives up for
      // good on an HTTP error (a proxy's 502 while the hub restarts): then we
      // open a new one ourselves.
      if (source.readyState === EventSource.CLOSED) {
        setTimeout(function () { connect(onState, onCall, onLink); }, 2000);
      }
    };
    source.addEventListener("state", function (e) {
      try {
        var msg = JSON.parse(e.data), got = typeof msg.topic === "string" && read(msg.topic, msg.payload);
        if (got) onState(got);
      } catch (err) { console.warn("dropped a malformed state message", err); }
    });
    source.addEventListener("call", function (e) {
      try {
        var got = read("calls", JSON.parse(e.data));
        if (got) onCall(got.payload);
      } catch (err) { console.warn("dropped a malformed call", err); }
    });
    return source;
  }
  function zoneFormat(zone, opts) {
    try { return new Intl.DateTimeFormat("en-GB", Object.assign({ timeZone: zone || undefined, hourCycle: "h23" }, opts)); }
    catch (err) { return new Intl.DateTimeFormat("en-GB", Object.assign({ hourCycle: "h23" }, opts)); }
  }
  function serviceName(names, fallback) {
    names = names || {};
    return names[lang] || names.en || Object.keys(names).map(function (k) { return names[k]; })[0] || fallback;
  }

  // -- the signage page ------------------------------------------------------
  var HIGHLIGHT_MS = 8000;
  // The fixed texts (headings, the words of an empty box) take turns in the site's languages, the screen's
  // own first, each for ALTERNATE_S seconds of the browser's clock (?alternate=0: only the screen's language;
  // default 12 s).
  var ALTERNATE_S = Math.max(0, parseFloat(params.get("alternate") || "12") || 0);
  var STARTED = Date.now();  // a screen opens in its own language
  var S = { door: null, site: null, queues: {}, recent: [], events: [], message: "", hubOnline: null, link: false,
            highlightId: null, highlightUntil: 0, seen: {} };
  var services = list("services"), counters = list("counters");
  var recentLimit = parseInt(params.get("recent") || "6", 10);

  function wantsService(id) { return !services.length || services.indexOf(id) >= 0; }
  function wantsCall(c) { return wantsService(c.service) && (!counters.length || counters.indexOf(c.counter) >= 0); }

  function foldState(got) {
    var p = got.payload;
    if (got.kind === "site") S.site = p;
    else if (got.kind === "queue_state") {
      if (!wantsService(got.id)) return;
      S.queues[got.id] = p;
    } else if (got.kind === "recent_calls") S.recent = p.calls.filter(wantsCall).slice(0, recentLimit);
    else if (got.kind === "events_today") S.events = p.events;
    else if (got.kind === "message") S.message = (p.text || "").trim();
    else if (got.kind === "hub_status") S.hubOnline = p.online;
    else if (got.kind === "phone_door") S.door = p;
    else return;
    render();
  }
  function foldCall(c) {
    if (S.seen[c.call_id]) return;
    S.seen[c.call_id] = true;
    if (!wantsCall(c)) return;
    S.recent = [c].concat(S.recent.filter(function (r) { return r.call_id !== c.call_id && r.ticket !== c.ticket; }))
      .slice(0, recentLimit);
    S.highlightId = c.call_id;
    S.highlightUntil = Date.now() + HIGHLIGHT_MS;
    render();
  }

  function hhmm(iso, zone) { return zoneFormat(zone, { hour: "2-digit", minute: "2-digit" }).format(new Date(iso)); }
  function dayKey(date, zone) { return zoneFormat(zone, { year: "numeric", month: "2-digit", day: "2-digit" }).format(date); }
  function daysFrom(iso, zone) {
    var a = dayKey(new Date(), zone).split("/"), b = dayKey(new Date(iso), zone).split("/");
    return Math.round((Date.UTC(b[2], b[1] - 1, b[0]) - Date.UTC(a[2], a[1] - 1, a[0])) / 86400000);
  }
  function dateText(iso, zone) {
    var p = dayKey(new Date(iso), zone).split("/");
    return t("{day}/{month}", { day: parseInt(p[0], 10), month: parseInt(p[1], 10) });
  }

  function fit(list) {
    // Only whole rows: a long list must not run past its panel.
    while (list.children.length > 1 && list.scrollHeight > list.clientHeight + 1) list.lastChild.remove();
  }

  // The ticket and the desk are read whole from across the hall (docs/signage.md): each at the largest size, up
  // to its design size (170 u, 68 u), at which it fits its box; the desk on two lines, broken only between
  // words, when one line would be under 44 u and two are clearly larger. (The Kivy screen: FitLabel.)
  var fitted = "";
  function fitCall() {
    var u = Math.min(innerWidth, innerHeight) / 1080, call = $("call");
    var ticket = $("call-ticket"), line = call.querySelector(".counter-line"), counter = $("call-counter");
    var key = [ticket.textContent, counter.textContent, innerWidth, innerHeight, call.className].join("|");
    if (key === fitted) return;
    fitted = key;
    ticket.style.fontSize = line.style.fontSize = "";
    line.classList.remove("wrapped");
    if (call.classList.contains("empty")) return;
    var oneLine = function () { return line.scrollWidth <= line.clientWidth + 0.5; };
    var size = largest(line, 68 * u, oneLine);
    if (size < 44 * u) {
      line.classList.add("wrapped");
      var wrapped = largest(line, 68 * u, function () { return oneLine() && lineCount(counter) <= 2; });
      if (wrapped >= size * 1.1) size = wrapped;
      else line.classList.remove("wrapped");
    }
    line.style.fontSize = size + "px";
    // the ticket last: it has the height the desk leaves
    largest(ticket, 170 * u, function () {
      return ticket.scrollWidth <= ticket.clientWidth + 0.5 && ticket.scrollHeight <= ticket.clientHeight + 0.5;
    });
  }
  // A heading (and the site's name) is 44 u where it fits, down to the 40 u floor, and only then shortened.
  // Fitted again when a text or the room it has changes: the site's name shares the top bar with the clock and
  // the offline sign, so its width is in the key (a block's or a flex:1 item's width does not follow its own
  // font size). Keyed on texts alone, a name fitted before the offline sign came or went kept its old size.
  var headed = "";
  function fitHeadings() {
    var u = Math.min(innerWidth, innerHeight) / 1080, nodes = document.querySelectorAll("h2, #site-name");
    var key = Array.prototype.map.call(nodes, function (n) { return n.textContent + "@" + n.clientWidth; }).join("|");
    if (key === headed) return;
    headed = key;
    Array.prototype.forEach.call(nodes, function (node) {
      node.style.fontSize = "";
      if (node.scrollWidth > node.clientWidth + 0.5) {
        largest(node, 44 * u, function () { return node.scrollWidth <= node.clientWidth + 0.5; });
        if (parseFloat(node.style.fontSize) < 40 * u) node.style.fontSize = 40 * u + "px";
      }
    });
  }
  function lineCount(node) {
    // the lines a text is laid out on: its range has a box per line (the element itself is one flex item box)
    var range = document.createRange(), tops = {};
    range.selectNodeContents(node);
    Array.prototype.forEach.call(range.getClientRects(), function (r) { tops[Math.round(r.top)] = true; });
    return Object.keys(tops).length;
  }
  function largest(node, max, fits) {
    // whole pixels: the design size if it fits, else the largest that does (a binary search down to 8 px)
    node.style.fontSize = max + "px";
    if (fits()) return max;
    var low = 8, high = Math.floor(max);
    while (high - low > 1) {
      var middle = (low + high) >> 1;
      node.style.fontSize = middle + "px";
      if (fits()) low = middle; else high = middle;
    }
    node.style.fontSize = low + "px";
    return low;
  }

  function fixedLang() {
    // The screen's language, then the site's others in the site's order; which one by the clock.
    var langs = [lang].concat(((S.site && S.site.languages) || []).filter(function (l) {
      return l !== lang && LANGS.indexOf(l) >= 0 && strings[l];
    }));
    if (!ALTERNATE_S || langs.length < 2) return lang;
    return langs[Math.floor((Date.now() - STARTED) / (ALTERNATE_S * 1000)) % langs.length];
  }
  function fixed(id, msgid, inLang) {
    var node = $(id);
    node.textContent = t(msgid, null, inLang);
    node.lang = inLang;
  }

  function render() {
    var zone = S.site && S.site.timezone;
    var fl = fixedLang();
    $("site-name").textContent = S.site ? S.site.name : "";
    $("offline").hidden = S.link && S.hubOnline !== false;
    $("offline-text").textContent = t("Offline");
    $("clock").textContent = hhmm(new Date().toISOString(), zone);
    $("message").hidden = !S.message;
    $("message").textContent = S.message;
    fixed("h-call", "Now serving", fl);
    fixed("h-recent", "Recent calls", fl);
    fixed("h-queues", "Queues", fl);
    fixed("h-events", "What's on", fl);

    var current = S.recent[0];
    var call = $("call");
    call.classList.toggle("empty", !current);
    call.classList.toggle("highlight", !!current && current.call_id === S.highlightId && Date.now() < S.highlightUntil);
    $("call-ticket").textContent = current ? current.ticket : "";
    $("call-counter").textContent = current ? (current.counter_name || current.counter)
      : (S.site ? t("No calls yet", null, fl) : t("Waiting for the hub…"));
    $("call-counter").lang = current ? "" : (S.site ? fl : lang);
    fitHeadings();
    fitCall();  // (after the headings: the ticket has the height they leave)

    var recent = $("recent");
    var calls = S.recent.slice(1).map(function (c) {
      var li = el("li");
      li.append(el("span", "t", c.ticket), el("span", "a", "→"), el("span", "c", c.counter_name || c.counter));
      return li;
    });
    if (!calls.length && S.site) {
      var none = el("li", "none", t("No calls yet today", null, fl));
      none.lang = fl;
      calls = [none];
    }
    recent.replaceChildren.apply(recent, calls);

    var order = services.length ? services.slice() : ((S.site && S.site.services) || []).map(function (s) { return s.id; });
    Object.keys(S.queues).sort().forEach(function (id) { if (order.indexOf(id) < 0) order.push(id); });
    var queues = $("queues");
    queues.replaceChildren.apply(queues, order.filter(function (id) { return S.queues[id]; }).map(function (id) {
      var q = S.queues[id], wait;
      if (q.mode === "booking_only") wait = t("Booking only");
      else if (!q.open) {
        wait = t("Closed");
        if (q.opens_at) {
          var days = daysFrom(q.opens_at, zone);
          var when = days === 0 ? hhmm(q.opens_at, zone) : dateText(q.opens_at, zone) + " " + hhmm(q.opens_at, zone);
          wait += " · " + t("Opens {time}", { time: when });
        }
      } else if (q.waiting === 0) wait = t("No wait");
      else wait = t("about {n} min", { n: Math.round(q.estimated_wait_min || 0) });
      var li = el("li", (q.open ? "open" : "closed") + (q.mode === "booking_only" ? " booking" : ""));
      li.dataset.service = id;
      var line = el("div", "line");
      line.append(el("span", "waiting", t("{n} waiting", { n: q.waiting })), el("span", "wait", wait));
      li.append(el("div", "name", serviceName(q.names, id)), line);
      return li;
    }));

    var now = Date.now();
    var upcoming = S.events.filter(function (e) { return Date.parse(e.end || e.start) >= now; })
      .sort(function (a, b) { return Date.parse(a.start) - Date.parse(b.start); }).slice(0, 5);
    var events = $("events");
    var rows = upcoming.map(function (e) {
      var kind = e.state || "scheduled";
      var status = kind === "sold_out" ? t("Sold out") : kind === "cancelled" ? t("Cancelled") : "";
      if (!status && e.tentative) status = t("To be confirmed");
      if (!status && typeof e.seats_left === "number" && e.seats_left > 0 && e.seats_left <= 10) {
        status = t("{n} seats left", { n: e.seats_left });
      }
      var li = el("li", kind + (e.tentative ? " tentative" : "") + (status ? " has-status" : ""));
      li.append(el("span", "time", hhmm(e.start, zone) + (e.end ? "–" + hhmm(e.end, zone) : "")),
                el("span", "room", e.room || ""), el("span", "status", status), el("div", "title", e.title));
      return li;
    });
    if (!rows.length) {
      var nothing = el("li", "none", t("Nothing more today", null, fl));
      nothing.lang = fl;
      rows = [nothing];
    }
    events.replaceChildren.apply(events, rows);
    [recent, queues, events].forEach(fit);

    var hours = (S.site && S.site.hours) || null, hoursText = "", building = "";
    var staffed = !hours || hours.staffed_now !== false;
    if (hours) {
      hoursText = staffed ? t("Staff are here now") : t("Self-service only");
      if (!staffed && hours.next_staffed_at) {
        var d = daysFrom(hours.next_staffed_at, zone), tm = hhmm(hours.next_staffed_at, zone);
        hoursText += " · " + (d === 0 ? t("Staff back at {time}", { time: tm })
          : d === 1 ? t("Staff back tomorrow at {time}", { time: tm })
          : t("Staff back {date} at {time}", { date: dateText(hours.next_staffed_at, zone), time: tm }));
      }
      var bh = (hours.today && hours.today.building) || [];
      building = hours.building_open === false && !bh.length ? t("Building closed")
        : t("Building open {hours}", { hours: bh.join(", ") });
    }
    showDoor(fl);
    $("hours").textContent = hoursText;
    $("building").textContent = building;
    document.querySelector("footer").classList.toggle("self", !staffed);
  }

  // A screen by the entrance (?door=1) shows the QR for a ticket on the phone; it changes with the code.
  var DOOR = params.get("door") === "1";
  function showDoor(fl) {
    var box = $("door");
    if (!box) return;
    var code = DOOR && S.door && S.door.code && S.link ? S.door.code : "";
    box.hidden = !code;
    if (!code) return;
    var img = $("door-qr"), src = new URL(S.door.qr || ("/phone/door.svg?d=" + code), hubBase).toString();
    if (img.getAttribute("src") !== src) img.setAttribute("src", src);
    img.alt = t("Scan to take a number", null, fl);
    fixed("door-text", "Scan to take a number", fl);
  }

  function startSignage() {
    var orientation = params.get("orientation") ||
      (window.innerHeight > window.innerWidth ? "portrait" : "landscape");
    document.body.classList.add(orientation === "portrait" ? "portrait" : "landscape");
    if (DOOR) document.body.classList.add("door-screen");  // the QR gets a place of its own in the grid
    loadStrings().then(function () {
      render();
      connect(foldState, foldCall, function (up) { S.link = up; render(); });
      // The clock and the end of a highlight; the data itself only moves on events.
      setInterval(render, 1000);
      // the call is fitted again for a new window size, and once the fonts it is measured in are there
      window.addEventListener("resize", render);
      // (loadingdone too: a face first needed after `ready` settled, say by a text that came later, loads after it)
      var refit = function () { fitted = headed = ""; render(); };
      document.fonts.ready.then(refit);
      document.fonts.addEventListener("loadingdone", refit);
    });
  }

  // -- the "your place" page -------------------------------------------------
  function startTicket() {
    var token = params.get("t") || "";
    var info = null, fetching = false, again = false, link = false;

    function show() {
      $("offline").hidden = link;
      $("offline-text").textContent = t("Offline");
      $("h-number").textContent = t("Your number");
      $("hint").textContent = t("Keep this page open — it updates by itself.");
      var called = $("called"), final = $("final");
      if (!info) return;
      if (info.error) {
        $("ticket").textContent = "";
        final.hidden = false;
        final.textContent = t("Ticket not found");
        return;
      }
      $("service").textContent = serviceName(info.service_names, info.service);
      $("ticket").textContent = info.ticket;
      var waiting = info.status === "waiting";
      $("position").textContent = waiting ? (info.position > 0 ? t("{n} before you", { n: info.position }) : t("You are next")) : "";
      $("wait").textContent = waiting && info.position > 0 && info.estimated_wait_min != null
        ? t("Estimated wait") + ": " + t("about {n} min", { n: Math.round(info.estimated_wait_min) }) : "";
      var near = waiting && info.near === true;
      document.documentElement.classList.toggle("near", near);  // the whole page, background and all
      document.documentElement.classList.toggle("is-called", info.status === "called");
      $("near").hidden = !near;
      $("near").textContent = near ? t("Your turn is near. Please come to the waiting area.") : "";
      $("leave").hidden = !waiting;
      $("leave-open").textContent = t("I no longer need help");
      $("leave-question").textContent = t("Leave the queue? Your place goes to the next person.");
      $("leave-yes").textContent = t("Yes, leave the queue");
      $("leave-no").textContent = t("No, keep my place");
      if (!waiting) $("leave-confirm").hidden = true;
      showNotify(waiting);
      called.hidden = info.status !== "called";
      called.textContent = info.status === "called" ? t("You are called to {counter}", { counter: info.counter_name || "" }) : "";
      final.hidden = !(info.status === "done" || info.status === "no_show" || info.status === "left");
      $("hint").hidden = !final.hidden;  // nothing more will change: no "keep this page open"
      final.textContent = info.status === "done" ? t("You have been served. Thank you!")
        : info.status === "no_show" ? t("Your turn has passed. Please ask at the desk.")
        : info.status === "left" ? t("You have left the queue. Thank you for letting us know.") : "";
      var calledNow = info.status === "called" ? called.textContent : "";
      document.title = calledNow ? "▶ " + info.ticket + " · " + calledNow
        : near ? "● " + t("Soon") + ": " + info.ticket + " · Vuoro" : info.ticket + " · Vuoro";
      if (calledNow && calledNow !== said) alertVisitor(calledNow, said !== null);
      said = calledNow;
      // Near the turn: said once (live region, a short buzz) when it becomes true while the page is open; a
      // ticket that is near from the start shows it, and is not read out over the page's first reading.
      var nearNow = near ? $("near").textContent : "";
      if (nearNow && saidNear !== null && saidNear !== nearNow) alertVisitor(nearNow, true, [200]);
      saidNear = nearNow;
    }
    // A call is said to screen readers (a live region: WCAG 4.1.3), in the title (another tab shows it),
    // and, where the browser lets a page, with a vibration and a chime. Not on first load if it was old.
    var said = null, saidNear = null, audio = null;
    function alertVisitor(text, fresh, pattern) {
      var region = $("announce");
      region.textContent = "";  // the same words again (a recall) are only read if the region changes
      setTimeout(function () { region.textContent = info.ticket + ": " + text; }, 100);
      if (!fresh) return;
      if (navigator.vibrate) navigator.vibrate(pattern || [400, 200, 400]);
      try {
        if (audio && audio.state === "running") chime(audio);
      } catch (err) { console.warn("no sound", err); }
    }
    function chime(ctx) {
      [0, 0.35].forEach(function (at, i) {
        var osc = ctx.createOscillator(), gain = ctx.createGain();
        osc.frequency.value = i ? 660 : 880;
        gain.gain.setValueAtTime(0.0001, ctx.currentTime + at);
        gain.gain.exponentialRampToValueAtTime(0.3, ctx.currentTime + at + 0.02);
        gain.gain.exponentialRampToValueAtTime(0.0001, ctx.currentTime + at + 0.3);
        osc.connect(gain).connect(ctx.destination);
        osc.start(ctx.currentTime + at);
        osc.stop(ctx.currentTime + at + 0.32);
      });
    }
    // Browsers allow sound only after the visitor touched the page once: be ready from that touch on.
    function unlockSound() {
      var Ctx = window.AudioContext || window.webkitAudioContext;
      if (!Ctx) return;
      audio = audio || new Ctx();
      if (audio.state !== "running") audio.resume();
    }
    document.addEventListener("pointerdown", unlockSound);
    document.addEventListener("keydown", unlockSound);
    // A text or an e-mail when the turn nears: only where the site sends them, only if the visitor asks.
    var channels = [], channel = null, asked = "", notifyProblem = "";
    function showNotify(waiting) {
      var box = $("notify");
      box.hidden = !(waiting && channels.length);
      if (box.hidden) return;
      $("notify-h").textContent = t("Get a message when your turn is near");
      $("notify-legend").textContent = t("Get a message when your turn is near");
      var set = $("notify-channels");
      if (set.querySelectorAll("input").length !== channels.length) {
        channels.forEach(function (c) {
          var label = el("label", "channel"), radio = el("input");
          radio.type = "radio"; radio.name = "channel"; radio.value = c; radio.id = "notify-" + c;
          radio.checked = c === channel;
          radio.addEventListener("change", function () { channel = c; showNotify(true); });
          label.htmlFor = radio.id;
          label.append(radio, el("span", null, ""));
          set.append(label);
        });
      }
      set.querySelectorAll("label.channel span").forEach(function (span, i) {
        span.textContent = channels[i] === "sms" ? t("Text message") : t("E-mail");
      });
      var input = $("notify-to");
      input.type = channel === "sms" ? "tel" : "email";
      input.autocomplete = channel === "sms" ? "tel" : "email";
      $("notify-label").textContent = channel === "sms" ? t("Your mobile number") : t("Your e-mail address");
      $("notify-send").textContent = t("Send me a message");
      $("notify-why").textContent = t("Used only for this ticket, and deleted when your visit ends.");
      $("notify-form").hidden = !!asked;
      $("notify-done").hidden = !asked;
      $("notify-done-text").textContent = asked ? t("We will send a message to {to} when your turn is near and when you are called.", { to: asked }) : "";
      $("notify-stop").textContent = t("Stop the messages");
      $("notify-status").textContent = notifyProblem;
    }
    function notifyUrl() { return new URL("/api/v1/track/" + encodeURIComponent(token) + "/notify", hubBase).toString(); }
    $("notify-form").addEventListener("submit", function (e) {
      e.preventDefault();
      var to = $("notify-to").value.trim();
      fetch(notifyUrl(), { method: "POST", headers: { "Content-Type": "application/json" },
                           body: JSON.stringify({ channel: channel, to: to }) })
        .then(function (r) {
          notifyProblem = r.ok ? "" : t("Please check the number or address.");
          if (r.ok) asked = to;
          showNotify(true);
          if (r.ok) $("notify-stop").focus();
        }).catch(function () { notifyProblem = t("Please check the number or address."); showNotify(true); });
    });
    $("notify-stop").addEventListener("click", function () {
      fetch(notifyUrl(), { method: "DELETE" }).then(function () { asked = ""; showNotify(true); $("notify-to").focus(); });
    });
    fetch(new URL("/api/v1/phone/notify", hubBase).toString(), { cache: "no-store" })
      .then(function (r) { return r.ok ? r.json() : { channels: [] }; })
      .then(function (json) { channels = json.channels || []; channel = channels[0] || null; if (info) show(); })
      .catch(function () { channels = []; });
    // "I no longer need help": asked once more, then the hub frees the place (POST .../leave).
    $("leave-open").addEventListener("click", function () {
      $("leave-confirm").hidden = false;
      $("leave-no").focus();
    });
    $("leave-no").addEventListener("click", function () { $("leave-confirm").hidden = true; $("leave-open").focus(); });
    // Leaving twice changes nothing (the hub answers "left" again), so a leave whose answer never came (the
    // connection ended as it went out) is simply sent once more before the page asks the hub how things stand.
    $("leave-yes").addEventListener("click", function () {
      $("leave-yes").disabled = true;
      var leaveUrl = new URL("/api/v1/track/" + encodeURIComponent(token) + "/leave", hubBase).toString();
      fetch(leaveUrl, { method: "POST" })
        .catch(function () {
          return new Promise(function (resolve) { setTimeout(resolve, 300); })
            .then(function () { return fetch(leaveUrl, { method: "POST" }); });
        })
        .then(function (r) { return r.json(); })
        .then(function (json) { if (json && json.status) { info = json; show(); $("final").focus(); } else refresh(); })
        .catch(function (err) { console.warn("leave failed", err); refresh(); })
        .then(function () { $("leave-yes").disabled = false; });
    });
    // The ticket's language (chosen at the kiosk), unless the address asks for one.
    function followTicketLanguage() {
      if (!info || info.error || params.get("lang") || LANGS.indexOf(info.language) < 0) return;
      lang = info.language;
      document.documentElement.lang = lang;
    }
    function refresh() {
      // One request at a time; events during a request ask for one more after it.
      if (fetching) { again = true; return; }
      fetching = true;
      fetch(new URL("/api/v1/track/" + encodeURIComponent(token), hubBase).toString(), { cache: "no-store" })
        .then(function (r) {
          if (r.status === 404) return { error: "not_found" };
          if (!r.ok) throw new Error("HTTP " + r.status);
          return r.json();
        })
        .then(function (json) { info = json; followTicketLanguage(); show(); })
        .catch(function (err) { console.warn("track failed", err); })
        .then(function () { fetching = false; if (again) { again = false; refresh(); } });
    }
    function relevant(service) { return info && !info.error && service === info.service; }
    loadStrings().then(function () {
      show();
      refresh();
      connect(function (got) {
        if (got.kind === "queue_state" && relevant(got.id)) refresh();
      }, function (call) {
        if (!info || call.ticket === info.ticket || relevant(call.service)) {
          if (info && call.ticket === info.ticket) {
            // Say it at once; the refetch confirms the rest.
            info.status = "called";
            info.counter_name = call.counter_name || call.counter;
            if (said !== null) said = "";  // a call again (recall) is said again
            show();
          }
          refresh();
        }
      }, function (up) {
        var back = up && !link;
        link = up;
        show();
        if (back) refresh();  // after a blip, catch up on what was missed
      });
    });
  }

  // -- the phone page: take a number -----------------------------------------
  var NATIVE = { da: "Dansk", sv: "Svenska", fi: "Suomi", nl: "Nederlands", en: "English" };
  var SAVED = "vuoro.phone.ticket";
  function api(path) { return new URL(path, hubBase).toString(); }
  function newKey() {
    var a = new Uint8Array(16);
    crypto.getRandomValues(a);
    return "p" + Array.prototype.map.call(a, function (b) { return ("0" + b.toString(16)).slice(-2); }).join("");
  }
  function startPhone() {
    var door = params.get("d") || "";
    var view = null, keys = {}, busy = false, problem = "";
    // The visitor's language: the address's, else the phone's if the site speaks it, else the site's first.
    function chooseLang() {
      if (params.get("lang") || !view) return;
      var nav = (navigator.language || "").slice(0, 2);
      lang = view.languages.indexOf(nav) >= 0 ? nav : view.languages[0];
      document.documentElement.lang = lang;
    }
    function waitText(q) {
      if (!q.open) {
        return q.opens_at ? t("Closed") + " · " + t("Opens {time}", { time: hhmm(q.opens_at, view.zone) }) : t("Closed");
      }
      return (q.waiting === 0 ? t("No wait") : t("about {n} min", { n: Math.round(q.estimated_wait_min || 0) }))
        + " · " + t("{n} waiting", { n: q.waiting });
    }
    function show() {
      document.title = t("Take a queue number") + " · Vuoro";
      $("h-take").textContent = t("Take a queue number");
      $("hint").textContent = t("No app, no account: your place in the queue stays on this page.");
      $("langs-label").textContent = t("Language");
      $("status").textContent = problem;
      if (!view) return;
      $("site").textContent = view.site;
      var ok = view.door === "ok";
      $("lead").textContent = !ok ? (view.door === "old"
        ? t("This code is old: it changes every minute. Scan the code on the screen by the entrance again.")
        : t("Scan the code on the screen by the entrance to take a number."))
        : view.services.length ? t("Choose what you need help with") : t("No service takes walk-in visitors right now.");
      $("lead").classList.toggle("warn", !ok);
      var list = $("services");
      list.replaceChildren.apply(list, (ok ? view.services : []).map(function (q) {
        var b = el("button", "service", null);
        b.type = "button";
        b.dataset.service = q.service;
        b.disabled = busy;
        b.classList.toggle("closed", !q.open);
        b.append(el("span", "name", serviceName(q.names, q.service)), el("span", "wait", waitText(q)));
        b.addEventListener("click", function () { take(q); });
        var li = el("li");
        li.append(b);
        return li;
      }));
      var langs = $("langs");
      langs.replaceChildren($("langs-label"));
      view.languages.forEach(function (l) {
        var a = el("a", "lang" + (l === lang ? " current" : ""), NATIVE[l] || l);
        a.lang = l;
        a.href = "?lang=" + l + (door ? "&d=" + encodeURIComponent(door) : "");
        if (l === lang) a.setAttribute("aria-current", "true");
        langs.append(a);
      });
      showSaved();
    }
    function showSaved() {
      var saved = null;
      try { saved = JSON.parse(localStorage.getItem(SAVED) || "null"); } catch (err) { saved = null; }
      var have = $("have");
      have.hidden = !(saved && saved.day === view.day && saved.live);
      if (have.hidden) return;
      $("have-text").textContent = t("You already have a number today: {ticket}", { ticket: saved.ticket });
      $("have-link").textContent = t("Show my number");
      $("have-link").href = saved.path;
    }
    function take(q) {
      if (busy) return;
      if (q.mode === "booking_only") { problem = t("By appointment only. Book a time at the kiosk, on the web or by phone."); show(); return; }
      busy = true;
      problem = t("Taking your number…");
      show();
      // One key per service for this page: a double tap, or a retry after a lost answer, is the same ticket.
      keys[q.service] = keys[q.service] || newKey();
      fetch(api("/api/v1/phone/tickets"), {
        method: "POST", headers: { "Content-Type": "application/json", "Idempotency-Key": keys[q.service] },
        body: JSON.stringify({ service: q.service, language: lang, door: door })
      }).then(function (r) {
        return r.json().then(function (json) { return { status: r.status, json: json }; });
      }).then(function (got) {
        if (got.status === 200 || got.status === 201) {
          try {
            localStorage.setItem(SAVED, JSON.stringify({ ticket: got.json.ticket, path: got.json.track_path,
                                                         day: view.day, live: true }));
          } catch (err) { console.warn("could not remember the ticket", err); }
          location.replace(got.json.track_path + "&lang=" + lang);
          return;
        }
        var e = (got.json && got.json.error) || {};
        if (e.code === "door_code") { view.door = "old"; problem = ""; }
        else if (e.code === "closed") problem = e.opens_at ? t("Closed now. Opens {time}.", { time: hhmm(e.opens_at, view.zone) }) : t("Closed now.");
        else if (e.code === "booking_only") problem = t("By appointment only. Book a time at the kiosk, on the web or by phone.");
        else if (e.code === "too_many") problem = t("Many numbers were taken from this connection. Please wait about {n} min, or take a number at the kiosk.",
                                                    { n: Math.max(1, Math.round((e.retry_after || 60) / 60)) });
        else problem = t("Something went wrong. Please try again, or take a number at the kiosk.");
        if (e.code !== "too_many" && e.code !== "door_code") delete keys[q.service];
      }).catch(function (err) {
        console.warn("ticket failed", err);
        problem = t("Something went wrong. Please try again, or take a number at the kiosk.");
      }).then(function () { busy = false; show(); });
    }
    function load() {
      return fetch(api("/api/v1/phone?d=" + encodeURIComponent(door)), { cache: "no-store" })
        .then(function (r) { return r.json(); })
        .then(function (json) {
          if (json.error) { problem = json.error.message; return; }
          view = json;
          view.zone = json.timezone;
          if (json.pass) door = json.pass;  // scanned once: the pass lets the visitor choose calmly
          chooseLang();
        }).catch(function (err) { console.warn("phone view failed", err); problem = t("Something went wrong. Please try again, or take a number at the kiosk."); });
    }
    loadStrings().then(load).then(function () {
      show();
      // Is a saved ticket still waiting? Then offer it rather than a second one.
      var saved = null;
      try { saved = JSON.parse(localStorage.getItem(SAVED) || "null"); } catch (err) { saved = null; }
      if (saved && saved.path) {
        var tok = new URLSearchParams(saved.path.split("?")[1] || "").get("t") || "";
        fetch(api("/api/v1/track/" + encodeURIComponent(tok)), { cache: "no-store" })
          .then(function (r) { return r.ok ? r.json() : null; })
          .then(function (json) {
            saved.live = !!json && (json.status === "waiting" || json.status === "called");
            if (json) saved.day = view && view.day;
            try { localStorage.setItem(SAVED, JSON.stringify(saved)); } catch (err) { /* private mode */ }
            if (view) showSaved();
          }).catch(function () { /* offline: the list still works */ });
      }
      // The waits move on while the visitor reads: refresh the list each 20 s (no stream for a list this small).
      setInterval(function () { if (!busy) load().then(show); }, 20000);
    });
  }

  // -- the poster by the door (printed) ------------------------------------------
  function startPoster() {
    loadStrings().then(function () {
      return fetch(api("/api/v1/phone"), { cache: "no-store" }).then(function (r) { return r.json(); });
    }).then(function (view) {
      if (!view || view.error) return;
      if (!params.get("lang")) { lang = view.languages[0]; document.documentElement.lang = lang; }
      var daily = view.poster === "daily";
      document.title = t("Take a queue number on your phone") + " · " + view.site;
      $("p-title").textContent = t("Take a queue number on your phone");
      $("p-qr").alt = t("Scan to take a number");
      $("p-how").textContent = daily ? t("Point your phone's camera at this code.")
        : t("Point your phone's camera at the code on the screen by the entrance.");
      $("p-valid").hidden = !daily;
      $("p-valid").textContent = daily ? t("This code works today only: {date}", { date: view.day }) : "";
      $("p-more").textContent = t("No app, no account: your place in the queue stays on this page.");
      $("p-site").textContent = view.site;
      var others = $("p-langs");
      others.replaceChildren.apply(others, view.languages.filter(function (l) { return l !== lang; }).map(function (l) {
        var li = el("li");
        li.lang = l;
        li.append(el("strong", null, t("Take a queue number on your phone", null, l)), el("span", null,
          daily ? t("Point your phone's camera at this code.", null, l)
                : t("Point your phone's camera at the code on the screen by the entrance.", null, l)));
        return li;
      }));
    });
  }

  window.Vuoro = { startSignage: startSignage, startTicket: startTicket, startPhone: startPhone, startPoster: startPoster, state: S, misreads: misreads,
                   fixedLang: fixedLang };
})();
