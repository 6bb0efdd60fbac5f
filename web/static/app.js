// Keeps the pages live from /events, words times for the viewer and marks the viewer's own
// environments. The pages' shared parts (rows, an environment's content) are the same for every
// viewer: what depends on the viewer or on the clock is done here. The dashboard's rows arrive
// rendered by the server (escaped there, like the page itself); untrusted text in the
// environment page's JSON events (branch names, Flux messages) only goes into textContent.
"use strict";
(function () {
  const live = document.getElementById("live");
  const user = document.body.dataset.user || "";

  // ---------------------------------------------------------------- times, in the viewer's zone
  const clock = new Intl.DateTimeFormat(undefined, { hour: "2-digit", minute: "2-digit" });
  const day = new Intl.DateTimeFormat(undefined, { weekday: "short", day: "numeric", month: "short" });
  const exact = new Intl.DateTimeFormat(undefined, { dateStyle: "full", timeStyle: "long" });
  const zone = Intl.DateTimeFormat().resolvedOptions().timeZone || "";

  function span(ms) {
    const minutes = Math.round(Math.abs(ms) / 60000);
    if (minutes < 1) { return "less than a minute"; }
    if (minutes < 90) { return minutes + " min"; }
    const hours = Math.round(minutes / 60);
    if (hours < 48) { return hours + " h"; }
    return Math.round(hours / 24) + " days";
  }

  function sameDay(a, b) { return a.toDateString() === b.toDateString(); }

  // "19:00" today, "tomorrow 07:00", otherwise "Tue 8 Dec 19:00".
  function when(date, now) {
    const today = new Date(now);
    if (sameDay(date, today)) { return clock.format(date); }
    const tomorrow = new Date(today.getFullYear(), today.getMonth(), today.getDate() + 1);
    if (sameDay(date, tomorrow)) { return "tomorrow " + clock.format(date); }
    return day.format(date) + " " + clock.format(date);
  }

  // "at 19:00", "tomorrow at 07:00", "Tue 8 Dec at 19:00": a moment to come, in a sentence.
  function atWhen(date, now) {
    const words = when(date, now);
    const time = clock.format(date);
    return words === time ? "at " + time : words.slice(0, -time.length) + "at " + time;
  }

  function wordTime(node, now) {
    const date = new Date(node.getAttribute("datetime"));
    if (isNaN(date)) { return; }
    const ms = date - now;
    node.title = exact.format(date);
    if (node.hasAttribute("data-until")) {
      node.textContent = ms > 0 ? "sleeps in " + span(ms) + ", " + atWhen(date, now)
        : "asleep since " + when(date, now);
      node.classList.toggle("asleep", ms <= 0);
    } else if (node.hasAttribute("data-expires")) {
      // Expiry matters once the environment sleeps; until then it would only be noise.
      const until = node.parentElement.querySelector("time[data-until]");
      const asleep = !until || Date.parse(until.getAttribute("datetime")) <= now;
      node.textContent = ms > 0 ? ", expires in " + span(ms) : ", expiring";
      node.hidden = !asleep;
    } else if (node.hasAttribute("data-ago")) {
      node.textContent = ms < -60000 ? span(ms) + " ago" : "just now";
    } else {
      node.textContent = (ms > 0 ? "in " + span(ms) + ", " : span(ms) + " ago, ") + when(date, now);
    }
  }

  function wordTimes(root) {
    const now = Date.now();
    root.querySelectorAll("time[datetime]").forEach(node => wordTime(node, now));
  }
  wordTimes(document);
  setInterval(() => wordTimes(document), 30000);

  // An hour of every day in UTC (when new environments go to sleep), as the viewer's clock.
  document.querySelectorAll("[data-utc-hour]").forEach(node => {
    const at = new Date();
    at.setUTCHours(Number(node.dataset.utcHour), 0, 0, 0);
    node.title = node.textContent;
    node.textContent = clock.format(at) + " your time";
  });

  // ---------------------------------------------------------------- yours, copy buttons
  function enhance(root) {
    root.querySelectorAll("tr[data-owner], .env-head[data-owner]").forEach(node => {
      const mine = user !== "" && node.dataset.owner === user;
      node.classList.toggle("mine", mine);
      const anchor = node.querySelector("th.name a, h1");
      if (mine && anchor && !node.querySelector(".yours")) {
        const badge = document.createElement("span");
        badge.className = "yours";
        badge.innerHTML = '<span aria-hidden="true">♥</span> yours';
        anchor.after(" ", badge);
      }
    });
    root.querySelectorAll("button[data-copy]").forEach(button => { button.hidden = false; });
  }
  enhance(document);

  document.addEventListener("click", event => {
    const button = event.target.closest("button[data-copy]");
    if (!button) { return; }
    const done = text => {
      const label = button.firstChild;
      label.textContent = text;
      setTimeout(() => { label.textContent = "Copy"; }, 2000);
    };
    if (navigator.clipboard) {
      navigator.clipboard.writeText(button.dataset.copy).then(() => done("Copied"), () => done("Copy failed"));
    } else { done("Copy failed"); }
  });

  // ---------------------------------------------------------------- extend: preview, until
  const extend = document.querySelector("[data-extend]");
  const preview = document.querySelector("[data-extend-preview]");
  if (extend && preview) {
    const show = () => {
      const hours = Number(extend.value);
      const now = Date.now();
      const base = Math.max(Date.parse(extend.dataset.until) || 0, now);
      const until = new Date(base + hours * 3600000);
      preview.textContent = hours > 0 ? "until " + when(until, now) + " (" + span(until - now) + " from now)" : "";
      preview.title = hours > 0 ? exact.format(until) : "";
    };
    extend.addEventListener("input", show);
    show();
  }
  // The end-time form sends a wall-clock time: say in which zone (the viewer's), and start
  // from three hours after the current end.
  document.querySelectorAll("[data-zone]").forEach(node => { if (zone) { node.value = zone; } });
  document.querySelectorAll("[data-zone-name]").forEach(node => { if (zone) { node.textContent = "your time (" + zone + ")"; } });
  document.querySelectorAll("[data-until-input]").forEach(input => {
    const local = date => new Date(date - date.getTimezoneOffset() * 60000).toISOString().slice(0, 16);
    const current = extend ? Date.parse(extend.dataset.until) || 0 : 0;
    const start = new Date(Math.max(current, Date.now()) + 3 * 3600000);
    start.setMinutes(0, 0, 0);
    input.value = local(start);
    input.min = local(new Date());
  });

  // ---------------------------------------------------------------- delete from the list
  const dialog = document.getElementById("confirm-delete");
  if (dialog && dialog.showModal) {
    let opener = null;
    document.addEventListener("click", event => {
      const link = event.target.closest("a[data-delete]");
      if (!link) { return; }
      event.preventDefault();
      opener = link;
      const name = link.dataset.delete;
      const form = dialog.querySelector("form");
      form.action = "/env/" + encodeURIComponent(name) + "/delete";
      form.elements.confirm.value = name;
      dialog.querySelectorAll("[data-name]").forEach(node => { node.textContent = name; });
      dialog.showModal();
      dialog.querySelector("[data-close]").focus();
    });
    dialog.querySelector("[data-close]").addEventListener("click", () => dialog.close());
    dialog.addEventListener("close", () => { if (opener && opener.isConnected) { opener.focus(); } });
  }

  const url = document.body.dataset.stream;
  if (!url || !window.EventSource) { return; }

  function el(tag, cls, text) {
    const node = document.createElement(tag);
    if (cls) { node.className = cls; }
    if (text !== undefined && text !== null) { node.textContent = text; }
    return node;
  }

  function timeEl(datetime, kind) {
    const node = el("time");
    node.setAttribute("datetime", datetime);
    node.setAttribute("data-" + kind, "");
    wordTime(node, Date.now());
    return node;
  }

  // ---------------------------------------------------------------- the dashboard: rows
  function parseRow(html) {
    const template = document.createElement("template");
    template.innerHTML = html.trim();
    wordTimes(template.content);
    enhance(template.content);
    return template.content.firstElementChild;
  }

  function applyRow(name, html) {
    const rows = Array.from(document.querySelectorAll("tr[data-env]")).filter(r => r.dataset.env === name);
    for (const row of rows) {
      const focused = row.contains(document.activeElement) ? document.activeElement : null;
      const fresh = parseRow(html);
      row.replaceWith(fresh);
      // Keep a keyboard user's place when the row they are in changes under them.
      if (focused) {
        const same = focused.getAttribute("formaction") || focused.getAttribute("href");
        const again = Array.from(fresh.querySelectorAll("a, button")).find(n =>
          (n.getAttribute("formaction") || n.getAttribute("href")) === same);
        if (again) { again.focus(); }
      }
    }
    if (rows.length === 0) {
      const fresh = parseRow(html);
      const mine = document.querySelector("[data-section=mine] tbody");
      if (mine && user && fresh.dataset.owner === user) {
        mine.prepend(fresh);
        const empty = mine.querySelector("tr.empty"); if (empty) { empty.remove(); }
      }
    }
  }

  // The stream could not say what changed since the page was rendered: fetch the page again
  // and put in its lists, rather than reloading (which would lose the page's message, the
  // scroll position and a keyboard user's place).
  async function resync() {
    const response = await fetch(window.location.href, { credentials: "same-origin" });
    if (!response.ok) { throw new Error("resync: " + response.status); }
    const fresh = new DOMParser().parseFromString(await response.text(), "text/html");
    const sections = Array.from(document.querySelectorAll("[data-section]"));
    const replacements = Array.from(fresh.querySelectorAll("[data-section]"));
    if (sections.length === 0 || replacements.length === 0) { throw new Error("resync: no lists"); }
    const focused = document.activeElement;
    const place = focused && sections.some(s => s.contains(focused))
      ? focused.getAttribute("formaction") || focused.getAttribute("href") : null;
    const adopted = replacements.map(node => document.adoptNode(node));
    adopted.forEach(node => { wordTimes(node); enhance(node); });
    sections[0].before(...adopted);
    sections.forEach(node => node.remove());
    const summary = fresh.querySelector(".summary");
    const current = document.querySelector(".summary");
    if (summary && current) { current.replaceWith(document.adoptNode(summary)); }
    if (place) {
      const again = Array.from(document.querySelectorAll("[data-section] a, [data-section] button"))
        .find(n => (n.getAttribute("formaction") || n.getAttribute("href")) === place);
      if (again) { again.focus(); }
    }
  }

  function applyCounts(counts) {
    const total = document.querySelector("[data-count]");
    if (total) { total.textContent = counts.environments; }
    for (const [state, count] of Object.entries(counts.apps)) {
      const node = document.querySelector("[data-state-count=" + state + "]");
      if (node) { node.textContent = count; node.closest("[data-state]").hidden = count === 0; }
    }
  }

  // ---------------------------------------------------------------- one environment's page
  function setBadge(badge, state) {
    if (!badge) { return; }
    badge.className = badge.className.replace(/\bstate-\S+/, "state-" + state.toLowerCase());
    badge.textContent = state;
  }

  function code(text, cls) { return el("code", cls, text); }

  function shortRevision(value) {
    const cut = value.includes(":") ? value.lastIndexOf(":") : value.lastIndexOf("/");
    const tail = value.slice(cut + 1);
    return cut >= 0 && tail.length > 12 ? value.slice(0, cut + 1) + tail.slice(0, 8) : value;
  }

  function updateCard(card, app, env) {
    card.className = card.className.replace(/\bstate-\S+/, "state-" + app.state.toLowerCase());
    setBadge(card.querySelector("header [data-state-badge]"), app.state);
    const field = name => card.querySelector("[data-field=" + name + "]");
    const input = card.querySelector("form.switch input[name=prefix]");
    const fallback = input ? input.placeholder : "";
    const prefix = field("prefix");
    prefix.replaceChildren(code(app.prefix || fallback));
    if (!app.prefix || app.prefix === fallback) { prefix.append(" ", el("span", "meta", "(default)")); }
    if (input && document.activeElement !== input && input.value === input.defaultValue) {
      input.value = input.defaultValue = app.prefix && app.prefix !== fallback ? app.prefix : "";
    }
    const image = field("image");
    image.replaceChildren(app.imageTag ? code(app.imageTag, "tag") : "—");
    if (app.imageDigest) {
      const digest = code(app.imageDigest.slice(7, 19), "digest");
      digest.title = app.imageDigest;
      const meta = el("span", "meta", "digest ");
      meta.append(digest);
      image.append(" ", meta);
    }
    const revision = field("revision");
    if (app.revision) {
      const short = code(shortRevision(app.revision), "rev");
      short.title = app.revision;
      const copy = el("button", "copy", "Copy");
      copy.type = "button";
      copy.dataset.copy = app.revision;
      copy.append(el("span", "visually-hidden", " the full revision"));
      revision.replaceChildren(short, copy);
    } else { revision.textContent = "—"; }
    field("changed").replaceChildren(app.lastTransitionTime ? timeEl(app.lastTransitionTime, "ago") : "—");
    const urls = app.urls.map(u => {
      const link = el("a", null, u);
      // Only web links: a hostile Ingress host must not become a javascript: URL.
      if (/^https?:\/\//.test(u)) { link.href = u; link.rel = "noopener"; }
      return link;
    });
    field("urls").replaceChildren(...(urls.length ? urls.flatMap(u => [u, " "]) : ["—"]));
    let message = card.querySelector("[data-message]");
    if (app.state !== "Ready") {
      if (!message) {
        message = el("p", "message");
        message.setAttribute("data-message", "");
        card.querySelector("header").after(message);
      }
      message.textContent = app.message || "";
    } else if (message) { message.remove(); }
    renderWhy(card.querySelector("[data-why]"), app, env);
  }

  // ---------------------------------------------------------------- the "Why?" panel
  // The same markup as _why.html, drawn from the app's `diagnosis` (text only, never HTML).
  const WHY = { true: ["ok", "✔", "fine"], false: ["broken", "✖", "broken"],
    null: ["open", "◐", "under way or unknown"] };

  function renderWhy(slot, app, env) {
    const why = app.diagnosis;
    const schedule = Boolean((env.uptime || {}).schedule);
    const key = why ? JSON.stringify(why) + schedule : "";
    if (!slot || slot.dataset.whyKey === key) { return; }
    const wasOpen = Boolean(slot.querySelector("details[open]"));
    slot.dataset.whyKey = key;
    if (!why) { slot.replaceChildren(); return; }
    const chain = el("ol", "why-chain");
    chain.setAttribute("aria-label", "What Kollie looked at, in order");
    for (const step of why.steps) {
      const [mark, icon, words] = WHY[step.ok];
      const item = el("li", "why-step why-" + mark);
      const glyph = el("span", "why-mark", icon);
      glyph.setAttribute("aria-hidden", "true");
      item.append(glyph, " ", el("span", "visually-hidden", words + ": "), el("strong", null, step.kind),
        " ", code(step.namespace + "/" + step.name), " ", el("span", "why-note", step.summary));
      chain.append(item);
    }
    // The cause in its source's words, unless the chain's step already quotes them.
    const said = why.cause.reason + ": " + why.cause.message;
    const cause = el("p", "why-cause", why.cause.kind === "Environment" ? "Kollie sees " : "Flux says ");
    cause.append(code(why.cause.reason));
    if (why.cause.message) { cause.append(": " + why.cause.message); }
    // `Backquoted` words of the summary (tags, names) are code, as _why.html shows them.
    const summary = el("p", "why-summary");
    summary.append(...why.summary.split("`").map((part, i) => i % 2 ? code(part) : part));
    const parts = [el("h4", "why-title", "Why is " + app.name + " not ready?"), summary, chain];
    if (!why.steps.some(step => step.summary === said)) { parts.push(cause); }
    if (why.cause.kind === "Environment") {
      // Submits the page's `wake` form, as in _why.html.
      const wake = el("p", "why-wake");
      const button = el("button", "small", schedule ? "Wake it for 3 hours" : "Extend by 3 hours");
      button.type = "submit";
      button.setAttribute("form", "wake");
      button.name = "hours";
      button.value = "3";
      const link = el("a", null, "Uptime");
      link.href = "#uptime-h";
      wake.append(button, schedule ? " ends its schedule and wakes it now; "
        : " wakes it up now; ", link, " has the other choices.");
      parts.push(wake);
    }
    const commands = el("details", "why-commands");
    commands.open = wasOpen;
    const pre = el("pre");
    pre.append(code(why.commands.join("\n")));
    commands.append(el("summary", null, "Look further"), pre);
    parts.push(commands);
    slot.replaceChildren(...parts);
  }

  // A form being submitted brings a fresh page itself: reloading now would cancel it (the
  // change a form makes often reaches the stream before the form's own answer does).
  let submitting = false;
  document.addEventListener("submit", () => { submitting = true; });

  function reloadUnlessSubmitting() {
    if (!submitting) { window.location.reload(); }
  }

  function updateDetail(env) {
    const detail = document.querySelector("[data-detail]");
    if (!detail || detail.dataset.env !== env.name) { return; }
    const cards = Array.from(detail.querySelectorAll("[data-app]"));
    if (cards.length !== env.apps.length) { reloadUnlessSubmitting(); return; }
    for (const app of env.apps) {
      const card = cards.find(c => c.dataset.app === app.name);
      if (!card) { reloadUnlessSubmitting(); return; }
      updateCard(card, app, env);
    }
    const states = env.apps.map(a => a.state);
    const overall = env.deleting ? "Deleting"
      : ["Failed", "Progressing", "Suspended", "Ready"].find(s => states.includes(s));
    if (overall) { setBadge(document.querySelector("[data-overall] [data-state-badge]"), overall); }
  }

  function updateUptime(env) {
    const cell = document.querySelector("[data-detail-uptime]");
    if (!cell) { return; }
    const up = env.uptime || {};
    const parts = [];
    if (up.schedule) { parts.push(el("span", "schedule", "up " + up.schedule)); }
    else if (up.until) {
      parts.push(timeEl(up.until, "until"));
      if (env.expiresAt) { parts.push(timeEl(env.expiresAt, "expires")); }
    }
    if (env.keep) { parts.push(" ", el("span", "kept", "kept")); }
    cell.replaceChildren(...parts);
    wordTimes(cell);
    if (extend && up.until) { extend.dataset.until = up.until; extend.dispatchEvent(new Event("input")); }
  }

  // ---------------------------------------------------------------- the stream
  function connected(on, text) { live.textContent = text; live.className = "live " + (on ? "on" : "off"); }

  if (!live.textContent.trim()) { live.textContent = "connecting…"; }
  const source = new EventSource(url);
  source.onopen = () => connected(true, "live");
  source.onerror = () => connected(false, "reconnecting… data may be stale");
  source.addEventListener("row", e => { const body = JSON.parse(e.data); applyRow(body.name, body.html); });
  source.addEventListener("counts", e => applyCounts(JSON.parse(e.data)));
  source.addEventListener("resync", () => { resync().catch(() => window.location.reload()); });
  source.addEventListener("snapshot", e => {
    const body = JSON.parse(e.data);
    body.items.forEach(updateDetail);
    if (!body.synced) { connected(true, "live (cluster view still loading)"); }
  });
  source.addEventListener("environment", e => {
    const env = JSON.parse(e.data);
    updateDetail(env);
    if (document.querySelector("[data-detail]")?.dataset.env === env.name) { updateUptime(env); }
  });
  source.addEventListener("health", e => {
    if (JSON.parse(e.data).connected) { connected(true, "live"); }
    else { connected(false, "Kubernetes API unreachable: data may be stale"); }
  });
  source.addEventListener("deleted", e => {
    const name = JSON.parse(e.data).name;
    document.querySelectorAll("tr[data-env]").forEach(row => { if (row.dataset.env === name) { row.remove(); } });
    const detail = document.querySelector("[data-detail]");
    if (detail && detail.dataset.env === name) { connected(false, "this environment was deleted"); }
  });
})();
