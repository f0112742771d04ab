// The knowledge base in the agent's screen-pop: suggestions from the call's IVR service and ticket
// category at ring/answer, refreshed as live transcript lines arrive; open an entry, attach it to the
// ticket, text its summary to the caller. desk.js calls KB.pop / KB.transcript / KB.ticket.
const KB = {callId: null, items: [], open: null, uses: [], timer: null, mode: "suggest", loading: 0};

function kbEl(tag, props, ...kids) { const e = Object.assign(document.createElement(tag), props || {}); e.append(...kids); return e; }

KB.pop = function (call) {
  if (!call) return;
  if (KB.callId !== call.call_id) {
    KB.callId = call.call_id; KB.items = []; KB.open = null; KB.uses = []; KB.mode = "suggest";
    $("kb-q").value = ""; $("kb-result").textContent = "";
    KB.suggest();
  }
  KB.render();
};
KB.transcriptText = function () {
  const tr = S.transcripts[KB.callId];
  if (!tr) return "";
  let text = "";
  for (let i = tr.lines.length - 1; i >= 0 && text.length < 400; i--) text = tr.lines[i].text + "。" + text;
  return text.slice(-500);
};
KB.transcript = function (msg) {   // a final line: suggest again a moment later (lines come in bursts)
  if (!msg.final || msg.call_id !== KB.callId || KB.mode !== "suggest") return;
  clearTimeout(KB.timer);
  KB.timer = setTimeout(KB.suggest, 1200);
};
KB.ticket = function () { if (KB.mode === "suggest") KB.suggest(); KB.loadUses(); };
KB.suggest = async function () {
  const callId = KB.callId;
  if (!callId) return;
  const text = KB.transcriptText();
  try {
    const r = await api("/api/calls/" + encodeURIComponent(callId) + "/knowledge" + (text ? "?text=" + encodeURIComponent(text) : ""));
    if (callId === KB.callId && KB.mode === "suggest") { KB.items = r.suggestions; KB.render(); }
  } catch (e) { /* the next event tries again */ }
};
KB.search = async function () {
  const q = $("kb-q").value.trim();
  if (!q) { KB.mode = "suggest"; return KB.suggest(); }
  const r = await api("/api/knowledge?q=" + encodeURIComponent(q));
  KB.mode = "search"; KB.items = r.results; KB.render();
};
KB.show = async function (id) {
  KB.open = await api("/api/knowledge/" + id);
  $("kb-result").textContent = "";
  KB.render();
};
KB.loadUses = async function () {
  if (!S.ticket || S.ticket.call_id !== KB.callId) return;
  try { KB.uses = await api("/api/tickets/" + S.ticket.id + "/knowledge"); KB.render(); } catch (e) { /* shown on next action */ }
};
KB.attach = async function () {
  if (!S.ticket) throw new Error(t("kb_no_ticket"));
  KB.uses = await api("/api/tickets/" + S.ticket.id + "/knowledge", "POST", {entry_id: KB.open.id});
  $("kb-result").textContent = t("kb_attached_ok");
  KB.render();
};
KB.sms = async function () {
  if (!S.ticket) throw new Error(t("kb_no_ticket"));
  const m = await api("/api/tickets/" + S.ticket.id + "/knowledge/" + KB.open.id + "/sms", "POST", {});
  $("kb-result").textContent = t("kb_queued") + " · " + m.to_number;
  $("kb-result").dataset.outbox = m.id;
  await KB.loadUses();
  loadTexts();     // desk.js: the ticket's texts, followed to their receipt
};
KB.render = function () {
  const list = $("kb-suggestions");
  list.dataset.count = KB.items.length;
  list.replaceChildren(...(KB.items.length ? KB.items.map(x => {
    const b = kbEl("button", {className: "kb-item", textContent: x.title});
    b.dataset.kbId = x.id; b.dataset.slug = x.slug;
    b.onclick = () => act(() => KB.show(x.id));
    const words = x.matched.filter(w => w.length > 1);   // single characters say little to the agent
    const why = x.why === "words" ? t(KB.mode === "search" ? "kb_why_match" : "kb_why_words") + ": " + words.join("、")
      : t("kb_why_category") + ": " + label("ticket_categories", x.category);
    return kbEl("li", {}, b, kbEl("span", {className: "muted", textContent: " " + why}));
  }) : [kbEl("li", {className: "muted", textContent: t("kb_none")})]));
  const box = $("kb-article");
  box.hidden = !KB.open;
  if (KB.open) {
    const v = KB.open.published || KB.open.latest;
    box.dataset.kbId = KB.open.id;
    $("kb-a-title").textContent = v.title + (v.needs_lawyer_review ? "（" + t("kb_needs_review") + "）" : "");
    $("kb-a-question").textContent = v.question;
    $("kb-a-answer").textContent = v.answer;
    $("kb-a-laws").textContent = t("kb_laws") + ": " + v.laws.map(l => "《" + l.law + "》" + l.article).join("；");
    $("kb-a-summary").textContent = t("kb_summary") + ": " + v.summary;
    $("btn-kb-attach").disabled = $("btn-kb-sms").disabled = !S.ticket || S.ticket.call_id !== KB.callId;
  }
  const used = $("kb-attached");
  used.replaceChildren(...KB.uses.map(u => kbEl("li", {textContent: u.title + " · " + t(u.action === "sms" ? "kb_used_sms" : "kb_used_attach")})));
};
function kbWire() {
  $("btn-kb-search").onclick = () => act(KB.search);
  $("kb-q").onkeydown = (e) => { if (e.key === "Enter") act(KB.search); };
  $("btn-kb-attach").onclick = () => act(KB.attach);
  $("btn-kb-sms").onclick = () => act(KB.sms);
}
kbWire();
