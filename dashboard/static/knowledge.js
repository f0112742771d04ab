// The supervisors' knowledge base page: entries by status and category, one entry's form (each save is a
// new version), review (publish the latest version) and expiry, and the usage report.
const K = {me: null, csrf: "", info: {}, entries: [], cur: null};
async function api(path, method = "GET", body) {
  const opts = {method, headers: {"Content-Type": "application/json"}};
  if (method !== "GET") opts.headers["X-CSRF-Token"] = K.csrf;
  if (body !== undefined) opts.body = JSON.stringify(body);
  const r = await fetch(path, opts);
  if (r.status === 401) { location.href = "/login?next=/knowledge"; throw new Error("login"); }
  const data = await r.json().catch(() => ({}));
  if (!r.ok) throw new Error(data.error || r.statusText);
  return data;
}
function $(id) { return document.getElementById(id); }
function el(tag, props, ...kids) { const e = Object.assign(document.createElement(tag), props || {}); e.append(...kids); return e; }
function catName(c) { const m = (K.info.ticket_categories || {})[c]; return m ? (m[LANG] || m.zh) : c; }
async function act(fn) {
  $("action-error").textContent = "";
  try { await fn(); } catch (e) { if (e.message !== "login") $("action-error").textContent = t("error") + ": " + e.message; }
}

function fillFilters() {
  const st = $("kb-filter-status"), cat = $("kb-filter-category"), fc = $("f-category");
  const sv = st.value, cv = cat.value, fv = fc.value;
  st.replaceChildren(new Option(t("kb_all"), ""), ...["draft", "published", "expired"].map(s => new Option(t("kb_s_" + s), s)));
  const cats = Object.keys(K.info.ticket_categories || {});
  cat.replaceChildren(new Option(t("kb_all"), ""), ...cats.map(c => new Option(catName(c), c)));
  fc.replaceChildren(...cats.map(c => new Option(catName(c), c)));
  st.value = sv; cat.value = cv; if (fv) fc.value = fv;
}
async function loadEntries() {
  const q = new URLSearchParams();
  if ($("kb-filter-status").value) q.set("status", $("kb-filter-status").value);
  if ($("kb-filter-category").value) q.set("category", $("kb-filter-category").value);
  K.entries = await api("/api/knowledge/entries?" + q);
  renderEntries();
}
function renderEntries() {
  $("kb-entries").tBodies[0].replaceChildren(...K.entries.map(e => {
    const tr = el("tr", {className: K.cur && K.cur.id === e.id ? "selected" : ""});
    tr.dataset.slug = e.slug; tr.dataset.status = e.status;
    const title = (e.latest || {}).title || e.slug;
    for (const v of [catName(e.category), title, t("kb_s_" + e.status), "v" + e.latest_version + (e.published_version ? " / v" + e.published_version : "")]) tr.appendChild(el("td", {textContent: v}));
    tr.onclick = () => act(() => openEntry(e.id));
    return tr;
  }));
}
async function openEntry(id) {
  K.cur = await api("/api/knowledge/" + id);
  const v = K.cur.latest;
  $("f-slug").value = K.cur.slug; $("f-slug").disabled = true;
  $("f-category").value = K.cur.category;
  $("f-title").value = v.title; $("f-question").value = v.question; $("f-answer").value = v.answer;
  $("f-summary").value = v.summary; $("f-laws").value = v.laws.map(l => l.law + "|" + l.article).join("\n");
  $("f-keywords").value = v.keywords.join(" "); $("f-from").value = v.effective_from; $("f-to").value = v.effective_to || "";
  $("f-review").checked = v.needs_lawyer_review;
  render();
}
function newEntry() {
  K.cur = null;
  for (const id of ["f-slug", "f-title", "f-question", "f-answer", "f-summary", "f-laws", "f-keywords", "f-from", "f-to"]) $(id).value = "";
  $("f-slug").disabled = false; $("f-review").checked = true;
  render();
}
function formFields() {
  const laws = $("f-laws").value.split("\n").map(l => l.trim()).filter(Boolean).map(l => {
    const [law, article] = l.split("|"); return {law: (law || "").trim(), article: (article || "").trim()};
  });
  return {category: $("f-category").value, title: $("f-title").value, question: $("f-question").value,
    answer: $("f-answer").value, summary: $("f-summary").value, laws,
    keywords: $("f-keywords").value.split(/\s+/).filter(Boolean), effective_from: $("f-from").value,
    effective_to: $("f-to").value || null, needs_lawyer_review: $("f-review").checked};
}
async function save() {
  const body = formFields();
  if (K.cur) K.cur = await api("/api/knowledge/" + K.cur.id, "PATCH", {...body, expect_version: K.cur.latest_version});
  else K.cur = await api("/api/knowledge/entries", "POST", {slug: $("f-slug").value, ...body});
  $("kb-saved").textContent = t("saved") + " v" + K.cur.latest_version;
  await loadEntries(); await openEntry(K.cur.id);
}
async function publish() {
  K.cur = await api("/api/knowledge/" + K.cur.id + "/publish", "POST", {version: K.cur.latest_version});
  $("kb-saved").textContent = t("kb_s_published") + " v" + K.cur.published_version;
  await loadEntries(); await openEntry(K.cur.id);
}
async function expire() {
  K.cur = await api("/api/knowledge/" + K.cur.id + "/expire", "POST", {});
  $("kb-saved").textContent = t("kb_s_expired");
  await loadEntries(); await openEntry(K.cur.id);
}
async function loadReport() {
  const r = await api("/api/knowledge/report?days=30");
  $("kb-most-used").tBodies[0].replaceChildren(...r.most_used.map(x => el("tr", {}, el("td", {textContent: x.title}),
    el("td", {textContent: t("kb_used_attach") + " " + x.attached}), el("td", {textContent: t("kb_used_sms") + " " + x.texted}))));
  $("kb-unanswered").tBodies[0].replaceChildren(...r.unanswered.map(x => el("tr", {}, el("td", {textContent: x.query}),
    el("td", {textContent: t("kb_count") + " " + x.count}), el("td", {textContent: (x.last_at || "").replace("T", " ").slice(0, 16)}))));
}
function render() {
  applyI18n();
  fillFilters();
  $("whoami").textContent = K.me ? K.me.name + " (" + K.me.id + ")" : "";
  $("kb-form-title").textContent = K.cur ? (K.cur.latest.title + " · " + K.cur.slug) : t("kb_new");
  $("kb-form-state").textContent = K.cur ? t("kb_status") + ": " + t("kb_s_" + K.cur.status) + " · " + t("kb_latest") + " v" + K.cur.latest_version +
    (K.cur.published_version ? " · " + t("kb_published_v") + " v" + K.cur.published_version : "") : "";
  $("btn-kb-save").textContent = t(K.cur ? "kb_save_version" : "kb_create");
  $("btn-kb-publish").disabled = !K.cur || K.cur.latest_version === K.cur.published_version;
  $("btn-kb-expire").disabled = !K.cur || K.cur.status !== "published";
  renderEntries();
  if (K.cur) $("kb-versions").tBodies[0].replaceChildren(...(K.cur.versions || []).map(v => el("tr", {},
    el("td", {textContent: "v" + v.version}), el("td", {textContent: t("kb_s_" + v.status)}), el("td", {textContent: v.title}),
    el("td", {textContent: v.created_by + " " + (v.created_at || "").slice(0, 16).replace("T", " ")}),
    el("td", {textContent: v.reviewed_by}))));
  else $("kb-versions").tBodies[0].replaceChildren();
}
window.render = render;
async function start() {
  const info = await api("/api/me");
  K.me = info.user; K.csrf = info.csrf; K.info = info;
  if (K.me.role === "agent" || K.me.role === "wallboard") { location.href = "/desk"; return; }
  $("kb-filter-status").onchange = $("kb-filter-category").onchange = () => act(loadEntries);
  $("btn-kb-new").onclick = newEntry;
  $("btn-kb-save").onclick = () => act(save);
  $("btn-kb-publish").onclick = () => act(publish);
  $("btn-kb-expire").onclick = () => act(expire);
  render();
  await act(loadEntries);
  await act(loadReport);
}
start();
