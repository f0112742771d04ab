// The command center's wallboard: one tile per city the viewer may see, refreshed from
// /api/wallboard whenever the WebSocket says a call or an agent changed (and every 5 s for clocks).
const W = {me: null, csrf: "", info: {}, tiles: [], alarms: {}, detail: null, pending: null, nodes: []};
// a wall display's login only reads the board (numbers masked by the server): no alert list, no actions
const display = () => W.me && W.me.role === "wallboard";

async function api(path, method = "GET", body) {
  const opts = {method, headers: {"Content-Type": "application/json"}};
  if (method !== "GET") opts.headers["X-CSRF-Token"] = W.csrf;
  if (body !== undefined) opts.body = JSON.stringify(body);
  const r = await fetch(path, opts);
  if (r.status === 401) { location.href = "/login?next=/wallboard"; throw new Error("login"); }
  const data = await r.json().catch(() => ({}));
  if (!r.ok) throw new Error(data.error || r.statusText);
  return data;
}
const $ = (id) => document.getElementById(id);
const pct = (x) => x === null || x === undefined ? "—" : Math.round(x * 100) + "%";
const secs = (x) => x === null || x === undefined ? "—" : Math.round(x) + (LANG === "zh" ? "秒" : " s");
function cityName(c) { return (c.names && (c.names[LANG] || c.names.zh)) || c.city; }
function el(tag, props, ...kids) { const e = Object.assign(document.createElement(tag), props || {}); e.append(...kids); return e; }

function stateBadge(state) {
  const b = el("span", {className: "state", textContent: t("st_" + state)});
  b.dataset.state = state;
  return b;
}

function tile(c) {
  const kv = (label, value) => [el("span", {textContent: t(label)}), el("b", {textContent: value})];
  const box = el("article", {className: "tile"});
  box.dataset.city = c.city; box.dataset.health = c.health; box.dataset.waiting = c.waiting;
  box.append(el("h3", {}, el("span", {textContent: cityName(c)}), el("span", {className: "muted", textContent: c.open ? "" : t("closed")})),
             el("div", {className: "big waiting", textContent: c.waiting}),
             el("div", {className: "kv"}, ...kv("longest", secs(c.longest_wait_seconds)),
                ...kv("logged_in", c.agents.logged_in), ...kv("ready_n", c.agents.ready), ...kv("on_call", c.agents.on_call),
                ...kv("paused_n", c.agents.paused), ...kv("wrap_n", c.agents.wrap_up),
                ...kv("sl", pct(c.today.service_level)), ...kv("abandon", pct(c.today.abandonment_rate)),
                ...kv("asa", secs(c.today.asa_seconds)), ...kv("calls_today", c.today.calls)));
  for (const a of c.alarms) box.append(el("div", {className: "al", textContent: "⚠ " + t("al_" + a)}));
  box.onclick = () => openCity(c.city);
  return box;
}

function render() {
  applyI18n();
  $("whoami").textContent = W.me ? W.me.name : "";
  $("tiles").replaceChildren(...W.tiles.map(tile));
  $("alarms-box").hidden = $("desk-link").hidden = display();
  const open = Object.values(W.alarms).filter(a => !a.acknowledged_at || (a.kind === "alarm" && !a.cleared_at))
    .sort((a, b) => b.id - a.id);
  $("alarms").tBodies[0].replaceChildren(...(open.length ? open.map(a => {
    const city = W.tiles.find(x => x.city === a.city);
    const b = el("button", {textContent: a.acknowledged_at ? t("acked") : t("ack"), disabled: !!a.acknowledged_at});
    b.onclick = () => act(async () => { W.alarms[a.id] = await api("/api/alerts/" + a.id + "/ack", "POST", {}); render(); });
    const tr = el("tr", {}, el("td", {textContent: city ? cityName(city) : a.city}),
                  el("td", {textContent: t("al_" + (a.kind === "alarm" ? a.topic : a.kind)) + (a.term ? " " + a.term : "")}),
                  el("td", {}, b));
    tr.dataset.kind = a.kind === "alarm" ? a.topic : a.kind; tr.dataset.city = a.city;
    return tr;
  }) : [el("tr", {}, el("td", {className: "muted", textContent: t("no_alerts")}))]));
  renderNodes();
  if (W.detail) {
    $("detail").hidden = false;
    $("detail-city").textContent = cityName(W.detail.tile);
    $("detail-agents").tBodies[0].replaceChildren(...W.detail.agents.map(a => el("tr", {},
      el("td", {textContent: a.name}), el("td", {}, stateBadge(a.state)))));
    // the same listen / whisper / barge as the supervisors' desk (their SIP phone rings; audited)
    const spy = (c) => ["listen", "whisper", "barge"].map(mode => {
      const b = el("button", {textContent: t(mode), className: "spy-" + mode, disabled: c.status !== "talking"});
      b.onclick = () => act(() => api("/api/calls/" + encodeURIComponent(c.call_id) + "/" + mode, "POST", {}));
      return b;
    });
    $("detail-calls").tBodies[0].replaceChildren(...W.detail.calls.map(c => el("tr", {},
      el("td", {textContent: c.caller}), el("td", {textContent: t("cs_" + c.status)}), el("td", {textContent: c.agent || c.queue}),
      el("td", {}, ...(W.me.role === "agent" || display() ? [] : spy(c))))));
  }
}
// the cluster's nodes: health, last heartbeat, the cities each serves (and those it stands in for)
function renderNodes() {
  const names = Object.fromEntries(W.tiles.map(c => [c.city, cityName(c)]));
  const cities = (ids) => ids.length > 4 ? ids.length + (LANG === "zh" ? " 个城市" : " cities") : ids.map(i => names[i] || i).join(LANG === "zh" ? "、" : ", ");
  $("nodes").tBodies[0].replaceChildren(...W.nodes.map(n => {
    const taken = n.serving.filter(c => !n.cities.includes(c));
    const badge = el("span", {className: "state node-health", textContent: t("node_health_" + n.health)});
    badge.dataset.health = n.health;
    const tr = el("tr", {}, el("td", {textContent: n.name + (n.this ? " · " + t("node_this") : "")}), el("td", {}, badge),
      el("td", {className: "muted", textContent: n.last_seen ? new Date(n.last_seen * 1000).toLocaleTimeString() : "—"}),
      el("td", {textContent: cities(n.cities) + (taken.length ? " + " + t("node_standby_for") + " " + cities(taken) : "")}));
    tr.dataset.node = n.name; tr.dataset.health = n.health;
    return tr;
  }));
}
async function act(fn) { $("action-error").textContent = ""; try { await fn(); } catch (e) { $("action-error").textContent = e.message; } }

async function refresh() {
  const data = await api("/api/wallboard");
  W.tiles = data.cities;
  W.nodes = data.nodes || [];
  if (!display()) for (const a of await api("/api/alerts?current=1")) W.alarms[a.id] = a;
  for (const id of Object.keys(W.alarms)) { const a = W.alarms[id]; if (a.acknowledged_at && (a.kind !== "alarm" || a.cleared_at)) delete W.alarms[id]; }
  if (W.detail) W.detail = await api("/api/wallboard/" + encodeURIComponent(W.detail.tile.city));
  $("updated").textContent = t("updated") + " " + new Date().toLocaleTimeString();
  render();
}
function soon() {   // many events in a burst: one refresh
  if (W.pending) return;
  W.pending = setTimeout(() => { W.pending = null; refresh().catch(() => {}); }, 150);
}
async function openCity(city) { await act(async () => { W.detail = await api("/api/wallboard/" + encodeURIComponent(city)); render(); }); }

function connect() {
  const ws = new WebSocket((location.protocol === "https:" ? "wss://" : "ws://") + location.host + "/ws");
  let retry = 1000;
  ws.onopen = () => { $("banner").hidden = true; soon(); };
  ws.onmessage = (m) => {
    const msg = JSON.parse(m.data);
    if (msg.type === "alert" || msg.type === "alert_acknowledged") W.alarms[msg.alert.id] = msg.alert;
    soon();
  };
  ws.onclose = (e) => {
    if (e.code === 4401) { location.href = "/login?next=/wallboard"; return; }   // the login has ended (live.py ENDED)
    $("banner").hidden = false; setTimeout(connect, retry); retry = Math.min(retry * 2, 15000); };
}

async function start() {
  const info = await api("/api/me");
  W.me = info.user; W.csrf = info.csrf; W.info = info;
  if (W.me.role === "agent") { location.href = "/desk"; return; }
  await refresh();
  connect();
  setInterval(() => refresh().catch(() => {}), 5000);
}
window.render = render;
start();
