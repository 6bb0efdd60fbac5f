// Keeps the pages live from /events and words times for the viewer. The dashboard's rows
// arrive rendered by the server (escaped there, like the page itself); untrusted text in the
// environment page's JSON events (branch names, Flux messages) only goes into textContent.
"use strict";
(function () {
  const live = document.getElementById("live");

  // ---------------------------------------------------------------- times, in the viewer's zone
  const clock = new Intl.DateTimeFormat(undefined, { hour: "2-digit", minute: "2-digit" });
  const day = new Intl.DateTimeFormat(undefined, { weekday: "short", day: "numeric", month: "short" });
  const exact = new Intl.DateTimeFormat(undefined, { dateStyle: "full", timeStyle: "long" });

  function span(ms) {
    const minutes = Math.round(Math.abs(ms) / 60000);
    if (minutes < 1) { return "less than a minute"; }
    if (minutes < 90) { return minutes + " min"; }
    const hours = Math.round(minutes / 60);
    if (hours < 48) { return hours + " h"; }
    return Math.round(hours / 24) + " days";
  }

  function when(date, now) {
    const sameDay = date.toDateString() === new Date(now).toDateString();
    return sameDay ? clock.format(date) : day.format(date) + " " + clock.format(date);
  }

  function wordTime(node, now) {
    const date = new Date(node.getAttribute("datetime"));
    if (isNaN(date)) { return; }
    const ms = date - now;
    node.title = exact.format(date);
    if (node.hasAttribute("data-until")) {
      node.textContent = ms > 0 ? "sleeps in " + span(ms) + ", at " + when(date, now)
        : "asleep since " + when(date, now);
    } else if (node.hasAttribute("data-expires")) {
      // Expiry matters once the environment sleeps; until then it would only be noise.
      const until = node.parentElement.querySelector("time[data-until]");
      const asleep = !until || Date.parse(until.getAttribute("datetime")) <= now;
      node.textContent = ms > 0 ? ", expires in " + span(ms) : ", expiring";
      node.hidden = !asleep;
    } else if (node.hasAttribute("data-ago")) {
      node.textContent = ms < 0 ? span(ms) + " ago" : "just now";
    } else {
      node.textContent = when(date, now);
    }
  }

  function wordTimes(root) {
    const now = Date.now();
    root.querySelectorAll("time[datetime]").forEach(node => wordTime(node, now));
  }
  wordTimes(document);
  setInterval(() => wordTimes(document), 30000);

  // ---------------------------------------------------------------- extend preview
  const extend = document.querySelector("[data-extend]");
  const preview = document.querySelector("[data-extend-preview]");
  if (extend && preview) {
    const show = () => {
      const hours = Number(extend.value);
      const base = Math.max(Date.parse(extend.dataset.until) || 0, Date.now());
      const until = new Date(base + hours * 3600000);
      preview.textContent = hours > 0 ? "until " + until.toISOString().replace(".000", "") +
        " (" + when(until, Date.now()) + " your time)" : "";
    };
    extend.addEventListener("input", show);
    show();
  }

  const url = document.body.dataset.stream;
  if (!url || !window.EventSource) { return; }

  function el(tag, cls, text) {
    const node = document.createElement(tag);
    if (cls) { node.className = cls; }
    if (text !== undefined && text !== null) { node.textContent = text; }
    return node;
  }

  // ---------------------------------------------------------------- the dashboard: rows
  const user = document.body.dataset.user || "";

  function parseRow(html) {
    const template = document.createElement("template");
    template.innerHTML = html.trim();
    const row = template.content.firstElementChild;
    wordTimes(template.content);
    return row;
  }

  function applyRow(name, html) {
    const rows = Array.from(document.querySelectorAll("tr[data-env]")).filter(r => r.dataset.env === name);
    for (const row of rows) { row.replaceWith(parseRow(html)); }
    if (rows.length === 0) {
      const fresh = parseRow(html);
      const mine = document.querySelector("[data-section=mine] tbody");
      if (mine && user && fresh.dataset.owner === user) {
        mine.prepend(fresh);
        const empty = mine.querySelector("tr.empty"); if (empty) { empty.remove(); }
      }
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
  function updateDetail(env) {
    const detail = document.querySelector("[data-detail]");
    if (!detail || detail.dataset.env !== env.name) { return; }
    for (const app of env.apps) {
      const card = Array.from(detail.querySelectorAll("[data-app]")).find(c => c.dataset.app === app.name);
      if (!card) { window.location.reload(); return; }
      card.className = "app-card state-" + app.state.toLowerCase();
      card.querySelector(".state").textContent = app.state;
      const dd = card.querySelectorAll("dd");
      dd[0].textContent = app.prefix || "";
      dd[1].textContent = app.imageTag || "—";
      if (app.imageDigest) { dd[1].append(" "); dd[1].appendChild(el("code", null, app.imageDigest.slice(7, 19))); }
      dd[2].textContent = app.revision || "—";
      if (app.lastTransitionTime) {
        const time = el("time");
        time.setAttribute("datetime", app.lastTransitionTime);
        time.setAttribute("data-ago", "");
        wordTime(time, Date.now());
        dd[3].replaceChildren(time);
      } else { dd[3].textContent = "—"; }
      dd[4].replaceChildren(...app.urls.map(u => {
        const link = el("a", null, u);
        // Only web links: a hostile Ingress host must not become a javascript: URL.
        if (/^https?:\/\//.test(u)) { link.href = u; link.rel = "noopener"; }
        return link;
      }));
      let message = card.querySelector(".message");
      if (app.state !== "Ready") {
        if (!message) { message = el("p", "message"); card.querySelector("dl").after(message); }
        message.textContent = app.message || "";
      } else if (message) { message.remove(); }
    }
  }

  function updateUptime(env) {
    const cell = document.querySelector("[data-detail-uptime]");
    if (!cell) { return; }
    const up = env.uptime || {};
    const parts = [];
    if (up.schedule) { parts.push("up " + up.schedule); }
    else if (up.until) {
      const until = el("time", null, "up until " + up.until);
      until.setAttribute("datetime", up.until);
      until.setAttribute("data-until", "");
      parts.push(until);
      if (env.expiresAt) {
        const expires = el("time", null, ", expires " + env.expiresAt);
        expires.setAttribute("datetime", env.expiresAt);
        expires.setAttribute("data-expires", "");
        parts.push(expires);
      }
    }
    if (env.keep) { parts.push(" (kept)"); }
    cell.replaceChildren(...parts);
    wordTimes(cell);
  }

  // ---------------------------------------------------------------- the stream
  function connected(on, text) { live.textContent = text; live.className = "live " + (on ? "on" : "off"); }

  const source = new EventSource(url);
  source.onopen = () => connected(true, "live");
  source.onerror = () => connected(false, "reconnecting… data may be stale");
  source.addEventListener("row", e => { const body = JSON.parse(e.data); applyRow(body.name, body.html); });
  source.addEventListener("counts", e => applyCounts(JSON.parse(e.data)));
  source.addEventListener("resync", () => window.location.reload());
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
