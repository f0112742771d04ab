// The agent desk: state buttons, screen-pop, call controls, notes; supervisors see their cities'
// live calls with listen / whisper / barge. Live updates arrive over /ws; every action is an API call.
const S = {me: null, csrf: "", info: {}, agents: {}, calls: {}, popId: null, history: [], tickets: [], ticket: null,
           ws: null, retry: 1000, transcripts: {}, alerts: {}};

async function api(path, method = "GET", body) {
  const opts = {method, headers: {"Content-Type": "application/json"}};
  if (method !== "GET") opts.headers["X-CSRF-Token"] = S.csrf;
  if (body !== undefined) opts.body = JSON.stringify(body);
  const r = await fetch(path, opts);
  if (r.status === 401) { location.href = "/login?next=/desk"; throw new Error("login"); }
  const data = await r.json().catch(() => ({}));
  if (!r.ok) throw new Error(data.error || r.statusText);
  return data;
}
function $(id) { return document.getElementById(id); }
function show(id, on) { $(id).hidden = !on; }
function cityName(id) { const c = S.info.cities && S.info.cities[id]; return c ? c[LANG] || c.zh : (id || ""); }
async function act(fn) {
  $("action-error").textContent = "";
  try { await fn(); } catch (e) { if (e.message !== "login") $("action-error").textContent = t("error") + ": " + e.message; }
}

// ---- what the desk shows
function myCall() {
  const mine = Object.values(S.calls).filter(c => c.agent === S.me.agent_id || c.ringing === S.me.agent_id);
  mine.sort((a, b) => (b.started_at || 0) - (a.started_at || 0));
  return mine.find(c => c.status !== "ended") || (S.popId && S.calls[S.popId]) || null;
}
function render() {
  if (!S.me) return;
  applyI18n();
  $("whoami").textContent = S.me.name + " (" + S.me.id + ")";
  if (S.me.role === "agent") renderAgent();
  else renderSupervisor();
}
window.render = render;

function renderAgent() {
  const a = S.agents[S.me.agent_id] || {state: "logged_out"};
  const st = $("state");
  st.dataset.state = a.state;
  st.textContent = t("st_" + a.state);
  let detail = a.state === "paused" && a.pause_reason ? t("r_" + a.pause_reason) : "";
  if (a.state === "wrap_up" && a.wrapup_until) detail = t("wrapup_left") + " " + Math.max(0, Math.ceil(a.wrapup_until - Date.now() / 1000)) + t("seconds");
  $("state-detail").textContent = detail;
  // app_queue cannot ring a phone that is not registered: say so where the agent looks
  show("phone-offline", a.state !== "logged_out" && (a.device === "unavailable" || a.device === "invalid"));
  $("btn-login").disabled = a.state !== "logged_out";
  // a browser phone that is not ready (no microphone, not registered) keeps calls away
  $("btn-ready").disabled = !(a.state === "paused") || (window.PHONE && window.PHONE.browser && !window.PHONE.ready);
  $("btn-pause").disabled = !(a.state === "ready" || a.state === "wrap_up" || a.state === "on_call");
  $("btn-logout").disabled = a.state === "logged_out";
  const sel = $("pause-reason");
  if (!sel.options.length) for (const r of S.info.pause_reasons || []) sel.add(new Option("", r));
  for (const o of sel.options) o.textContent = t("r_" + o.value);
  renderPop(myCall());
  renderTranscript();
}

function renderPop(call) {
  const pop = $("pop");
  if (!call) { pop.dataset.status = "none"; $("pop-title").textContent = t("no_call"); $("pop-caller").textContent = ""; show("pop-body", false); return; }
  if (S.popId !== call.call_id) { S.popId = call.call_id; $("notes").value = ""; $("notes-saved").textContent = ""; loadHistory(call.call_id); }
  const status = call.status === "ended" ? "ended" : (call.agent === S.me.agent_id && call.status === "talking" ? "talking" : "ringing");
  pop.dataset.status = status;
  pop.dataset.callId = call.call_id;
  $("pop-title").textContent = t(status === "ringing" ? "incoming" : status === "talking" ? "connected" : "ended");
  $("pop-caller").textContent = call.caller_number || "";
  show("pop-body", true);
  $("pop-city").textContent = cityName(call.city);
  $("pop-language").textContent = call.language ? t("lang_" + call.language) : "";
  $("pop-ivr").textContent = call.ivr_path || "";
  $("pop-green").textContent = call.green ? t("yes") + " · " + call.green : t("none");
  $("pop-green").className = call.green ? "green" : "";
  $("pop-queue").textContent = call.queue || "";
  $("pop-wait").textContent = call.wait_seconds != null ? Math.round(call.wait_seconds) + t("seconds") : "";
  const live = status === "talking";
  for (const id of ["btn-hold", "btn-resume", "btn-mute", "btn-unmute", "btn-hangup", "btn-xfer-blind", "btn-xfer-attended", "btn-xfer-complete", "btn-xfer-cancel", "btn-emergency"]) $(id).disabled = !live;
  fillTargets();
  fillEmergency(call);
  if (status !== "ringing") fetchTicket(call.call_id);
  renderTicket(call);
  renderForms(call);
  if (typeof KB !== "undefined") KB.pop(call);   // knowledge base suggestions (kb-desk.js)
  const tb = $("history").tBodies[0];
  tb.replaceChildren(...(S.history.length ? S.history : [null]).map(h => {
    const tr = document.createElement("tr");
    const cells = h ? [(h.started_at || "").replace("T", " ").slice(0, 16), cityName(h.city), h.outcome, h.agent, h.notes] : [t("none")];
    for (const v of cells) { const td = document.createElement("td"); td.textContent = v || ""; tr.appendChild(td); }
    return tr;
  }));
}
async function loadHistory(callId) {
  S.history = []; S.tickets = [];
  try {
    const h = await api("/api/calls/" + encodeURIComponent(callId) + "/history");
    S.history = h.previous_calls;
    S.tickets = h.tickets.filter(tk => tk.call_id !== callId);
    const mine = h.tickets.find(tk => tk.call_id === callId);
    if (mine && (!S.ticket || S.ticket.id !== mine.id)) showTicket(mine);
  } catch (e) { /* shown empty */ }
  render();
}
function label(kind, key) { const m = S.info[kind] || {}; return m[key] ? (m[key][LANG] || m[key].zh) : (key || ""); }
function showTicket(tk) {
  S.ticket = tk;
  $("ticket-category").value = tk.category; $("ticket-outcome").value = tk.outcome;
  $("ticket-summary").value = tk.summary; $("ticket-answer").value = tk.answer;
  $("ticket-follow-up").checked = tk.follow_up;
  if (typeof KB !== "undefined") KB.ticket();
  loadTexts();
}
// ---- the ticket's texts to the caller and their state; read again while one is still on its way
// (the SMS sender runs in another process: no live event, so a short poll, only while one is open)
const TEXT_FINAL = ["delivered", "failed", "dead", "cancelled"];
async function loadTexts() {
  clearTimeout(S.textsTimer);
  const id = S.ticket && S.ticket.id;
  if (!id) return;
  try {
    const rows = await api("/api/tickets/" + id + "/messages");
    if (!S.ticket || S.ticket.id !== id) return;
    S.texts = {ticket: id, rows};
    renderTexts(S.ticket);
    if (rows.some(m => !TEXT_FINAL.includes(m.status))) S.textsTimer = setTimeout(loadTexts, 3000);
  } catch (e) { S.textsTimer = setTimeout(loadTexts, 10000); }
}
function renderTexts(tk) {   // tk: the ticket of the call on screen (none: nothing to show)
  const rows = S.texts && tk && S.texts.ticket === tk.id ? S.texts.rows : [];
  $("ticket-texts").replaceChildren(...(rows.length ? rows.map(m => {
    const li = document.createElement("li");
    li.dataset.id = m.id; li.dataset.status = m.status; li.dataset.kind = m.kind;
    li.title = m.body;
    const at = m.delivered_at || m.updated_at || m.created_at;     // UTC on the wire: shown in the agent's time
    const when = at ? new Date(at).toLocaleString(LANG === "zh" ? "zh-CN" : "en-GB", {month: "numeric", day: "numeric", hour: "2-digit", minute: "2-digit"}) : "";
    const st = Object.assign(document.createElement("span"), {className: "st", textContent: t("sms_" + m.status)});
    li.append(t("sk_" + m.kind) + " · " + m.to_number + " · ", st,
      " " + when + (m.last_error ? "（" + m.last_error + "）" : ""));
    return li;
  }) : [Object.assign(document.createElement("li"), {className: "muted", textContent: t("texts_none")})]));
}
function renderTicket(call) {
  for (const [id, kind] of [["ticket-category", "ticket_categories"], ["ticket-outcome", "ticket_outcomes"]]) {
    const sel = $(id);
    if (sel.dataset.lang !== LANG) {
      const v = sel.value;
      sel.replaceChildren(new Option("—", ""), ...Object.keys(S.info[kind] || {}).map(k => new Option(label(kind, k), k)));
      sel.value = v; sel.dataset.lang = LANG;
    }
  }
  const tk = S.ticket && S.ticket.call_id === call.call_id ? S.ticket : null;
  renderTexts(tk);
  $("ticket-id").textContent = tk ? "#" + tk.id : t("no_ticket_yet");
  $("ticket-status").textContent = tk ? t("ts_" + tk.status) : "";
  $("ticket-county").textContent = tk && tk.county ? t("county") + " " + tk.county : "";
  for (const id of ["btn-ticket-save", "btn-ticket-resolve", "btn-ticket-refer", "btn-ticket-close"]) $(id).disabled = !tk || tk.status === "closed";
  const tb = $("ticket-history").tBodies[0];
  tb.replaceChildren(...(S.tickets.length ? S.tickets : [null]).map(h => {
    const tr = document.createElement("tr");
    const cells = h ? ["#" + h.id, (h.created_at || "").slice(0, 10), label("ticket_categories", h.category), label("ticket_outcomes", h.outcome), t("ts_" + h.status), h.summary] : [t("none")];
    for (const v of cells) { const td = document.createElement("td"); td.textContent = v || ""; tr.appendChild(td); }
    return tr;
  }));
}
// ---- legal-aid pre-screen and appointment, run with the caller
const MATTERS = ["wage_arrears", "work_injury", "labour_dispute", "maintenance", "social_insurance", "pension_relief",
  "state_compensation", "domestic_violence", "traffic", "medical", "food_drug", "pollution", "fake_agri_inputs",
  "civil_litigation", "criminal_defence", "other"];
const GROUPS = ["migrant_worker", "abuse_victim", "elderly_no_income", "minor_no_income", "severe_disability_no_income",
  "social_assistance", "judicial_assistance", "special_care", "military_family", "hero_martyr_relative", "martyr_survivor",
  "police_fire_survivor", "special_minor", "good_samaritan", "retrial_acquitted", "five_guarantees",
  "unemployment_benefit", "minimum_pension", "disaster"];
function renderForms(call) {
  const m = $("ps-matter");
  if (m.dataset.lang !== LANG) {
    const v = m.value;
    m.replaceChildren(...MATTERS.map(k => new Option(t("m_" + k), k)));
    if (v) m.value = v;
    for (const id of ["ps-act", "ps-respondent"]) {
      const sel = $(id), cur = sel.value;
      sel.replaceChildren(new Option("—", ""), ...Object.keys(S.info.cities || {}).map(c => new Option(cityName(c), c)));
      sel.value = cur;
    }
    $("ps-groups").replaceChildren(...GROUPS.map(g => {
      const l = document.createElement("label"), cb = document.createElement("input");
      cb.type = "checkbox"; cb.value = g; cb.className = "ps-group"; l.append(cb, " " + t("g_" + g)); return l;
    }));
    m.dataset.lang = LANG;
  }
  if ($("ap-center").dataset.city !== call.city) {
    $("ap-center").dataset.city = call.city;
    api("/api/legal-aid/centers").then(cs => {
      cs.sort((a, b) => (b.city === call.city) - (a.city === call.city));
      $("ap-center").replaceChildren(...cs.map(c => new Option(c.name[LANG] || c.name.zh, c.id)));
      loadSlots(); loadHomeSlots();
    }).catch(() => {});
  }
}
async function loadSlots() {
  const center = $("ap-center").value, day = $("ap-date").value;
  if (!center || !day) return;
  const slots = await api("/api/legal-aid/centers/" + encodeURIComponent(center) + "/slots?date=" + day).catch(() => []);
  $("ap-slot").replaceChildren(...slots.filter(x => x.free > 0).map(x => new Option(x.slot + " (" + x.free + ")", x.slot)));
}
async function runPrescreen() {
  const call = myCall();
  const body = {city: call.city, matter: $("ps-matter").value, household_size: parseInt($("ps-size").value || "1", 10),
    groups: [...document.querySelectorAll(".ps-group:checked")].map(c => c.value), places: {}};
  if ($("ps-income").value !== "") body.household_monthly_income = parseFloat($("ps-income").value);
  if ($("ps-act").value) body.places.act = $("ps-act").value;
  if ($("ps-respondent").value) { body.places.respondent_domicile = $("ps-respondent").value; body.places.respondent_residence = $("ps-respondent").value; }
  // a county code is more precise than the city: the county-level center answers (art. 38)
  if (/^[0-9]{6}$/.test($("ps-county").value.trim())) body.places.act = $("ps-county").value.trim();
  if ($("ps-residence").value) body.residence = $("ps-residence").value;
  if ($("ps-urgent").checked) body.urgent_preservation = true;
  // art. 25 para. 2 covers ordinary procedure only; summary or fast-track: the duty lawyer (art. 30)
  if ($("ps-procedure").value) body.ordinary_procedure = $("ps-procedure").value === "ordinary";
  const r = await api("/api/legal-aid/prescreen", "POST", body);
  const box = $("ps-result");
  box.dataset.eligibility = r.eligibility;
  box.replaceChildren();
  const add = (text, cls) => { const p = document.createElement("p"); p.textContent = text; if (cls) p.className = cls; box.appendChild(p); };
  // the deciding rule with its article; one resting on a news report only says so
  add(t("e_" + r.eligibility) + "（" + r.source + "）" + (r.verified ? "" : " ⚠ " + t("unverified")), r.eligibility === "likely" ? "green" : "");
  add(r.explanation);
  if (r.note) add(r.note);
  if (r.provide_first) add(t("provide_first"), "green");
  for (const n of r.notes) add("· " + n.source + "：" + n.text + (n.note ? "（" + n.note + "）" : ""));
  if (r.threshold != null) add(t("threshold") + ": " + r.threshold + (r.per_capita_income != null ? " / " + r.per_capita_income : ""));
  add(t("documents") + ": " + r.documents.join("、"));
  add(t("jurisdiction") + ": " + (r.jurisdiction.cities.map(cityName).join("、") || t("ask_place")) + "（" + r.jurisdiction.basis + "）");
  for (const o of r.jurisdiction.offices || [])
    add(t("offices") + ": " + (o.name || o.division) + " · " + o.division + (o.phone ? " · " + o.phone : "") +
        (o.address ? " · " + o.address : "") + (o.missing.length ? "（" + t("missing_data") + ": " + o.missing.join(", ") + "）" : ""));
  // after the answer is on screen: a code the ticket refuses (a city-level one) must not hide it
  await setTicketCounty(/^[0-9]{6}$/.test($("ps-county").value.trim()) ? $("ps-county").value.trim() : "");
}
// 上门服务: one of the center's visiting teams, for an applicant aged 80+ or with a grade 1-2 disability.
// The server decides who qualifies; its refusal is shown as it is, under a plain heading.
async function loadHomeSlots(clear) {
  const center = $("ap-center").value, day = $("hv-date").value;
  $("hv-slot").replaceChildren();
  if (clear === true) hvResult("", false);   // another day or center: the last answer no longer applies
  if (!center || !day) return;
  try {
    const slots = await api("/api/legal-aid/centers/" + encodeURIComponent(center) + "/home-visit-slots?date=" + day);
    $("hv-slot").replaceChildren(...slots.filter(x => x.free > 0).map(x => new Option(x.slot + " (" + x.free + ")", x.slot)));
    // after a booking the answer stays on screen, even when it took the day's last slot
    if (!$("hv-slot").options.length && clear === true) hvResult(t("hv_no_slot"), true);
  } catch (e) { if (e.message !== "login") hvResult(t("hv_refused") + ": " + e.message, true); }
}
function hvResult(text, refused) {
  const r = $("hv-result");
  r.textContent = text;
  r.className = refused ? "error" : "muted";
  r.dataset.state = text ? (refused ? "refused" : "booked") : "";
}
async function bookHomeVisit() {
  const call = myCall();
  const body = {center: $("ap-center").value, date: $("hv-date").value, slot: $("hv-slot").value,
    address: $("hv-address").value.trim(), caller_number: call.caller_number, language: call.language || "zh",
    ticket_id: S.ticket ? S.ticket.id : null};
  if ($("hv-age").value !== "") body.age = parseInt($("hv-age").value, 10);
  if ($("hv-grade").value) body.disability_grade = parseInt($("hv-grade").value, 10);
  try {
    const a = await api("/api/home-visits", "POST", body);
    hvResult(t("hv_booked") + " " + a.code + " · " + a.day + " " + a.slot + " · " + body.address, false);
  } catch (e) {
    if (e.message !== "login") hvResult(t("hv_refused") + ": " + e.message, true);
  }
  loadHomeSlots();
}
// the county typed into the pre-screen is the ticket's county (GET /api/stats/breakdown counts by it);
// PATCH checks it is a county-level code and that the ticket is this agent's
async function setTicketCounty(code) {
  if (!code || !S.ticket || S.ticket.status === "closed" || S.ticket.county === code) return;
  showTicket(await api("/api/tickets/" + S.ticket.id, "PATCH", {county: code}));
  render();
}
async function book() {
  const call = myCall();
  const a = await api("/api/appointments", "POST", {center: $("ap-center").value, date: $("ap-date").value,
    slot: $("ap-slot").value, caller_number: call.caller_number, language: call.language || "zh",
    ticket_id: S.ticket ? S.ticket.id : null});
  $("ap-result").textContent = t("booked") + " " + a.code + " · " + a.day + " " + a.slot;
  loadSlots();
  loadTexts();    // the confirmation text
}

async function fetchTicket(callId) {
  if (S.ticket && S.ticket.call_id === callId) return;
  try { showTicket(await api("/api/calls/" + encodeURIComponent(callId) + "/ticket")); render(); } catch (e) { /* not answered yet */ }
}
function fillTargets() {
  const type = $("xfer-type").value, sel = $("xfer-target");
  if (sel.dataset.type === type + LANG) return;
  sel.dataset.type = type + LANG;
  const opts = type === "agent" ? Object.entries(S.info.agents || {}).filter(([id]) => id !== S.me.agent_id)
    : type === "queue" ? (S.info.queues || []).map(q => [q, q])
    : type === "city" ? Object.keys(S.info.cities || {}).map(c => [c, cityName(c)])
    : Object.entries(S.info.transfer_numbers || {});
  sel.replaceChildren(...opts.map(([v, label]) => new Option(label + (type === "agent" ? " · " + v : ""), v)));
}

// 110/120 warm transfer: the emergency service joins the conversation, the agent stays on. A live
// high-severity keyword alert (self-harm, violence) on this call marks the row urgent.
function fillEmergency(call) {
  const sel = $("em-number");
  if (sel.dataset.lang !== LANG) {
    sel.dataset.lang = LANG;
    sel.replaceChildren(...Object.entries(S.info.emergency_numbers || {}).map(([n, label]) => new Option(label, n)));
  }
  const urgent = Object.values(S.alerts).some(a => a.call_id === call.call_id && a.severity === "high");
  $("emergency-row").classList.toggle("urgent", urgent);
  // state:number[:reason] from the dialplan's HotlineEmergency events (ringing, answered, left, failed)
  const [state, number, reason] = (call.emergency || "").split(":");
  const st = $("em-status");
  st.dataset.state = state || "";
  st.className = state === "failed" || state === "left" ? "error" : "muted";
  if (state === "ringing") st.textContent = t("em_dialling");
  else if (state === "answered") st.textContent = t("em_joined");
  else if (state === "left") st.textContent = number + " " + t("em_left");
  else if (state === "failed") st.textContent = number + " " + t("em_failed") + (reason ? "（" + (TEXT.zh["em_r_" + reason] ? t("em_r_" + reason) : reason) + "）" : "") + t("em_retry");
  else if (call.outcome === "emergency") st.textContent = t("em_joined");
}

function renderSupervisor() {
  renderAlerts();
  const tb = $("sup-calls").tBodies[0];
  const calls = Object.values(S.calls).filter(c => c.status !== "ended");
  tb.replaceChildren(...calls.map(c => {
    const tr = document.createElement("tr");
    tr.dataset.callId = c.call_id;
    for (const v of [cityName(c.city), c.caller_number, c.language ? t("lang_" + c.language) : "", t("cs_" + c.status), S.info.agents[c.agent] || c.agent]) {
      const td = document.createElement("td"); td.textContent = v || ""; tr.appendChild(td);
    }
    const td = document.createElement("td");
    for (const mode of ["listen", "whisper", "barge"]) {
      const b = document.createElement("button");
      b.textContent = t(mode); b.className = "spy-" + mode; b.disabled = c.status !== "talking";
      b.onclick = () => act(() => api("/api/calls/" + encodeURIComponent(c.call_id) + "/" + mode, "POST", {}));
      td.appendChild(b);
    }
    tr.appendChild(td);
    return tr;
  }));
  const ta = $("sup-agents").tBodies[0];
  ta.replaceChildren(...Object.values(S.agents).map(a => {
    const tr = document.createElement("tr");
    for (const v of [a.id, a.name]) { const td = document.createElement("td"); td.textContent = v; tr.appendChild(td); }
    const td = document.createElement("td"); const sp = document.createElement("span");
    sp.className = "state"; sp.dataset.state = a.state; sp.textContent = t("st_" + a.state); td.appendChild(sp); tr.appendChild(td);
    return tr;
  }));
}

// ---- live transcript (agent) and keyword alerts (supervisors)
function addTranscript(msg) {
  const tr = S.transcripts[msg.call_id] || (S.transcripts[msg.call_id] = {lines: [], partial: {}});
  if (msg.final) { tr.lines.push({speaker: msg.speaker, text: msg.text}); tr.partial[msg.speaker] = ""; }
  else tr.partial[msg.speaker] = msg.text;
}
function renderTranscript() {
  const box = $("live-transcript");
  const tr = S.popId && S.transcripts[S.popId];
  const line = (speaker, text, partial) => {
    const p = document.createElement("p"); if (partial) p.className = "partial";
    const who = document.createElement("span"); who.className = "who"; who.textContent = t("sp_" + speaker) + ":";
    p.appendChild(who); p.appendChild(document.createTextNode(text)); return p;
  };
  if (!tr) { box.replaceChildren(Object.assign(document.createElement("span"), {className: "muted", textContent: t("transcript_waiting")})); return; }
  const rows = tr.lines.map(l => line(l.speaker, l.text, false));
  for (const [speaker, text] of Object.entries(tr.partial)) if (text) rows.push(line(speaker, text, true));
  const atEnd = box.scrollTop + box.clientHeight >= box.scrollHeight - 4;
  box.replaceChildren(...rows);
  if (atEnd) box.scrollTop = box.scrollHeight;
}
function renderAlerts() {
  const open = Object.values(S.alerts).filter(a => !a.acknowledged_at).sort((a, b) => b.id - a.id);
  const body = $("sup-alerts").tBodies[0];
  if (!open.length) {
    const td = Object.assign(document.createElement("td"), {colSpan: 6, className: "muted", textContent: t("no_alerts")});
    const tr = document.createElement("tr"); tr.appendChild(td); body.replaceChildren(tr); return;
  }
  body.replaceChildren(...open.map(a => {
    const tr = document.createElement("tr"); if (a.severity === "high") tr.className = "high";
    const when = new Date(a.created_at).toLocaleTimeString();
    const names = (S.info.keyword_topics || {})[a.topic] || {};
    const topic = (names[LANG] || names.zh || a.topic) + " (" + t("phase_" + a.phase) + ")";
    for (const v of [when, cityName(a.city), topic, a.term, S.info.agents[a.agent] || a.agent]) {
      tr.appendChild(Object.assign(document.createElement("td"), {textContent: v || ""}));
    }
    const b = Object.assign(document.createElement("button"), {textContent: t("ack")});
    b.onclick = () => act(async () => { S.alerts[a.id] = await api("/api/alerts/" + a.id + "/ack", "POST", {}); render(); });
    const td = document.createElement("td"); td.appendChild(b); tr.appendChild(td);
    return tr;
  }));
}

// ---- live updates
function connect() {
  const ws = new WebSocket((location.protocol === "https:" ? "wss://" : "ws://") + location.host + "/ws");
  S.ws = ws;
  ws.onopen = () => { S.retry = 1000; show("banner", false); };
  ws.onmessage = (m) => {
    const msg = JSON.parse(m.data);
    if (msg.type === "hello") {
      S.agents = {}; for (const a of msg.agents) S.agents[a.id] = a;
      const keep = {}; for (const c of msg.calls) keep[c.call_id] = c;
      if (S.popId && S.calls[S.popId] && !keep[S.popId]) keep[S.popId] = S.calls[S.popId];
      S.calls = keep;
    } else if (msg.type === "agent") S.agents[msg.agent.id] = msg.agent;
    else if (msg.type === "call") S.calls[msg.call.call_id] = msg.call;
    else if (msg.type === "transcript") { addTranscript(msg); if (typeof KB !== "undefined") KB.transcript(msg); }
    else if ((msg.type === "alert" || msg.type === "alert_acknowledged") && msg.alert.kind === "keyword") S.alerts[msg.alert.id] = msg.alert;
    render();
  };
  ws.onclose = (e) => {
    if (e.code === 4401) { location.href = "/login?next=/desk"; return; }   // the login has ended (live.py ENDED)
    show("banner", true); setTimeout(connect, S.retry); S.retry = Math.min(S.retry * 2, 15000); };
}

// ---- buttons
function callAction(action, body) {
  return act(() => api("/api/calls/" + encodeURIComponent(S.popId) + "/" + action, "POST", body || {}));
}
function wire() {
  const me = () => "/api/agents/" + encodeURIComponent(S.me.agent_id) + "/";
  $("btn-login").onclick = () => act(() => api(me() + "login", "POST", {ready: false}));
  $("btn-ready").onclick = () => act(() => api(me() + "ready", "POST", {}));
  $("btn-pause").onclick = () => act(() => api(me() + "pause", "POST", {reason: $("pause-reason").value}));
  $("btn-logout").onclick = () => act(() => api(me() + "logout", "POST", {}));
  $("btn-hold").onclick = () => callAction("hold");
  $("btn-resume").onclick = () => callAction("resume");
  $("btn-mute").onclick = () => callAction("mute");
  $("btn-unmute").onclick = () => callAction("unmute");
  $("btn-hangup").onclick = () => callAction("hangup");
  const target = () => ({type: $("xfer-type").value, id: $("xfer-target").value});
  $("btn-xfer-blind").onclick = () => callAction("transfer", {target: target(), attended: false});
  $("btn-xfer-attended").onclick = () => callAction("transfer", {target: target(), attended: true});
  $("btn-xfer-complete").onclick = () => callAction("complete");
  $("btn-xfer-cancel").onclick = () => callAction("cancel");
  $("btn-emergency").onclick = () => act(async () => {
    // before the request: a busy 110 can answer (and its event arrive) before the POST returns
    $("em-status").textContent = t("em_dialling"); $("em-status").className = "muted";
    await api("/api/calls/" + encodeURIComponent(S.popId) + "/emergency", "POST",
              {number: $("em-number").value, reason: $("em-reason").value});
  });
  $("xfer-type").onchange = fillTargets;
  $("btn-save-notes").onclick = () => act(async () => {
    await api("/api/calls/" + encodeURIComponent(S.popId) + "/notes", "PUT", {notes: $("notes").value});
    $("notes-saved").textContent = t("saved") + " " + new Date().toLocaleTimeString();
  });
  const ticketPath = () => "/api/tickets/" + S.ticket.id;
  $("btn-ticket-save").onclick = () => act(async () => {
    const body = {summary: $("ticket-summary").value, answer: $("ticket-answer").value, follow_up: $("ticket-follow-up").checked};
    if ($("ticket-category").value) body.category = $("ticket-category").value;
    if ($("ticket-outcome").value) body.outcome = $("ticket-outcome").value;
    showTicket(await api(ticketPath(), "PATCH", body));
    $("ticket-saved").textContent = t("saved") + " " + new Date().toLocaleTimeString();
    render();
  });
  const move = (status) => act(async () => { showTicket(await api(ticketPath() + "/status", "POST", {status})); render(); });
  $("btn-ticket-resolve").onclick = () => move("resolved");
  $("btn-ticket-refer").onclick = () => move("referred");
  $("btn-ticket-close").onclick = () => move("closed");
  $("btn-prescreen").onclick = () => act(runPrescreen);
  $("btn-book").onclick = () => act(book);
  $("ap-center").onchange = () => act(() => Promise.all([loadSlots(), loadHomeSlots(true)]));
  $("hv-date").onchange = () => act(() => loadHomeSlots(true));
  $("btn-home-visit").onclick = () => act(bookHomeVisit);
  $("ap-date").onchange = () => act(loadSlots);
  $("btn-signout").onclick = async () => { try { await api("/api/logout", "POST", {}); } finally { location.href = "/login"; } };
}

async function start() {
  const info = await api("/api/me");
  S.me = info.user; S.csrf = info.csrf; S.info = info;
  if (S.me.role === "wallboard") { location.href = "/wallboard"; return; }   // a wall display reads the board only
  show("agent-panel", S.me.role === "agent");
  show("pop", S.me.role === "agent");
  show("supervisor-panel", S.me.role !== "agent");
  show("kb-page-link", S.me.role !== "agent");   // supervisors maintain the knowledge base
  wire();
  render();
  if (S.me.role !== "agent") {
    // the desk lists keyword alerts; alarms and the rest are on the wallboard
    try { for (const a of await api("/api/alerts?open=1&kind=keyword")) S.alerts[a.id] = a; } catch (e) { /* shown on next action */ }
  }
  connect();
  window.dispatchEvent(new Event("desk-ready"));   // the browser phone (phone.js) starts from here
  setInterval(() => { if (S.me.role === "agent") renderAgent(); }, 1000);  // wrap-up countdown
}
start();
