// Keeps the page live from /events. Untrusted text (branch names, Flux messages) only ever
// goes into textContent, never into HTML.
"use strict";
(function () {
  const live = document.getElementById("live");

  // Show the resulting end time before an extension is submitted.
  const extend = document.querySelector("[data-extend]");
  const preview = document.querySelector("[data-extend-preview]");
  if (extend && preview) {
    const show = () => {
      const hours = Number(extend.value);
      const base = Math.max(Date.parse(extend.dataset.until) || 0, Date.now());
      preview.textContent = hours > 0 ? "until " + new Date(base + hours * 3600000).toISOString().replace(".000", "") : "";
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

  let defaults = {};
  try { defaults = JSON.parse(document.body.dataset.defaults || "{}"); } catch (e) { defaults = {}; }

  function chips(env) {
    const list = el("ul", "chips");
    list.setAttribute("data-apps", "");
    for (const app of env.apps) {
      const chip = el("li", "chip state-" + app.state.toLowerCase());
      chip.title = app.message || "";
      chip.appendChild(el("span", "app", app.name));
      if (app.prefix && app.prefix !== (defaults[app.name] || "main")) { chip.append(" "); chip.appendChild(el("span", "prefix", app.prefix)); }
      chip.append(" ");
      chip.appendChild(el("span", "state", app.state));
      list.appendChild(chip);
    }
    return list;
  }

  function updateRow(env) {
    const table = document.querySelector("[data-environments] tbody");
    if (!table) { return; }
    let row = Array.from(table.querySelectorAll("tr[data-env]")).find(r => r.dataset.env === env.name);
    if (!row) {
      row = el("tr");
      row.dataset.env = env.name;
      const link = el("a", null, env.name);
      link.href = "/env/" + encodeURIComponent(env.name);
      const name = el("td"); name.appendChild(link);
      row.append(name, el("td", null, env.owner || ""), el("td", null, "new"), el("td"), el("td"));
      row.children[4].setAttribute("data-uptime", "");
      table.appendChild(row);
      const empty = table.querySelector("tr.empty"); if (empty) { empty.remove(); }
    }
    row.children[3].replaceChildren(chips(env));
    row.children[4].textContent = uptimeLabel(env);
  }

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
      dd[3].textContent = app.lastTransitionTime || "—";
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
    const uptime = document.querySelector("[data-uptime]");
    if (uptime) { uptime.textContent = uptimeLabel(env); }
  }

  function span(seconds) {
    seconds = Math.abs(Math.round(seconds));
    if (seconds < 90) { return seconds + "s"; }
    const minutes = Math.floor(seconds / 60);
    if (minutes < 90) { return minutes + "m"; }
    const hours = Math.floor(minutes / 60);
    return hours < 48 ? hours + "h" : Math.floor(hours / 24) + " days";
  }

  // The same wording as the server's (web/timefmt.py), kept current as time passes.
  function uptimeLabel(env) {
    const up = env.uptime || {};
    const now = Date.now();
    let label = "";
    if (up.schedule) { label = "up " + up.schedule; }
    else if (up.until) {
      const until = Date.parse(up.until);
      label = until > now ? "sleeps in " + span((until - now) / 1000) : "asleep";
      if (until <= now && env.expiresAt && Date.parse(env.expiresAt) > now) {
        label += ", expires in " + span((Date.parse(env.expiresAt) - now) / 1000);
      }
    }
    return env.keep ? label + " (kept)" : label;
  }

  function apply(env) { updateRow(env); updateDetail(env); }

  const source = new EventSource(url);
  source.onopen = () => { live.textContent = "live"; live.className = "live on"; };
  source.onerror = () => { live.textContent = "reconnecting… data may be stale"; live.className = "live off"; };
  source.addEventListener("snapshot", e => {
    const body = JSON.parse(e.data);
    body.items.forEach(apply);
    if (!body.synced) { live.textContent = "live (cluster view still loading)"; }
  });
  source.addEventListener("environment", e => apply(JSON.parse(e.data)));
  source.addEventListener("health", e => {
    if (JSON.parse(e.data).connected) { live.textContent = "live"; live.className = "live on"; }
    else { live.textContent = "Kubernetes API unreachable: data may be stale"; live.className = "live off"; }
  });
  source.addEventListener("deleted", e => {
    const name = JSON.parse(e.data).name;
    const row = document.querySelector("tr[data-env='" + CSS.escape(name) + "']");
    if (row) { row.remove(); }
    const detail = document.querySelector("[data-detail]");
    if (detail && detail.dataset.env === name) { live.textContent = "this environment was deleted"; }
  });
})();
