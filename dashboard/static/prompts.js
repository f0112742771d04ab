// IVR prompts (issue 20): every prompt per language with its text, status and who recorded it, a
// player, and upload of a WAV recorded elsewhere. Supervisors and the command center only.
Object.assign(TEXT.zh, {
  prompts_title: "12348 语音提示管理", desk_link: "坐席工作台", progress: "录制进度", language: "语言",
  st_recorded: "已录音", st_synthesised: "语音合成", st_placeholder: "占位提示音", total: "合计", all: "全部",
  show_status: "状态", number: "编号", prompt: "提示", text: "文本", status: "状态", recorded_by: "录制人/时间",
  listen: "试听", upload: "上传录音", uploaded: "已上传，立即生效：", text_placeholder: "文本待译",
  how: "电话录制：值班长在自己的话机上拨 {code}，按来电语言菜单的数字选择语言，再输入提示编号并按井号键；听完当前版本后在嘀声后录音，按井号键结束，按1保存、按2重录。",
  by_phone: "电话", by_upload: "上传", by_file: "随版本发布",
});
Object.assign(TEXT.en, {
  prompts_title: "12348 IVR prompts", desk_link: "Agent desk", progress: "Recording progress", language: "Language",
  st_recorded: "Recorded", st_synthesised: "Synthesised", st_placeholder: "Placeholder", total: "Total", all: "All",
  show_status: "Status", number: "No.", prompt: "Prompt", text: "Text", status: "Status", recorded_by: "Recorded by / at",
  listen: "Listen", upload: "Upload", uploaded: "Uploaded, live now: ", text_placeholder: "text to translate",
  how: "By phone: a supervisor dials {code} on their own phone, picks the language with its IVR digit, keys the prompt number and #, hears the current version, records after the beep, ends with #, then 1 to keep or 2 to record again.",
  by_phone: "phone", by_upload: "upload", by_file: "shipped",
});
const P = {me: null, csrf: "", data: null, target: null};
const $ = (id) => document.getElementById(id);
const PLACEHOLDER_MARK = "【待译】";
async function api(path, opts = {}) {
  opts.headers = opts.headers || {};
  if ((opts.method || "GET") !== "GET") opts.headers["X-CSRF-Token"] = P.csrf;
  const r = await fetch(path, opts);
  if (r.status === 401) { location.href = "/login?next=/prompts"; throw new Error("login"); }
  const data = await r.json().catch(() => ({}));
  if (!r.ok) throw new Error(data.error || r.statusText);
  return data;
}
function el(tag, attrs = {}, text = "") {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v);
  if (text) e.textContent = text;
  return e;
}
function render() {
  applyI18n();
  const d = P.data;
  if (!d) return;
  $("how").textContent = t("how").replace("{code}", d.record_code);
  const names = Object.fromEntries(d.languages.map(l => [l.code, l.name]));
  const prog = $("progress").tBodies[0];
  prog.replaceChildren();
  for (const l of d.languages) {
    const p = d.progress[l.code];
    const tr = el("tr", {"data-lang": l.code});
    tr.append(el("td", {lang: l.code}, `${l.name} (${l.code})`), el("td", {class: "n-recorded"}, String(p.recorded)),
              el("td", {class: "n-synthesised"}, String(p.synthesised)), el("td", {class: "n-placeholder"}, String(p.placeholder)),
              el("td", {}, String(p.total)));
    prog.append(tr);
  }
  $("notes").replaceChildren(...d.languages.filter(l => l.review_note).map(l => el("div", {class: "note"}, `${l.name}: ${l.review_note}`)));
  const sel = $("lang");
  if (!sel.options.length) for (const l of d.languages) sel.add(new Option(`${l.name} (${l.code})`, l.code));
  const want = $("status").value;
  const body = $("prompts").tBodies[0];
  body.replaceChildren();
  for (const r of d.prompts) {
    if (r.lang !== sel.value || (want && r.status !== want)) continue;
    const tr = el("tr", {"data-prompt": `${r.lang}/${r.prompt_id}`});
    const text = el("td", {class: "text"});
    if (r.text.startsWith(PLACEHOLDER_MARK)) {
      text.append(el("span", {class: "text-placeholder"}, `[${t("text_placeholder")}] `), el("span", {lang: "zh-CN"}, r.text.slice(PLACEHOLDER_MARK.length)));
    } else text.append(el("span", {lang: r.lang === "zh" ? "zh-CN" : r.lang}, r.text));
    const who = r.recorded_by ? `${r.recorded_by} · ${new Date(r.recorded_at).toLocaleString(LANG === "zh" ? "zh-CN" : "en")} · v${r.version} (${t("by_" + r.source)})`
              : (r.source === "file" ? t("by_file") : "—");
    const audio = el("audio", {controls: "", preload: "none", src: `/api/prompts/${r.lang}/${r.prompt_id}/audio?v=${r.version || 0}`});
    const up = el("button", {class: "upload", "data-prompt": `${r.lang}/${r.prompt_id}`}, t("upload"));
    up.addEventListener("click", () => { P.target = r; $("file").value = ""; $("file").click(); });
    tr.append(el("td", {}, String(r.number)), el("td", {}, r.prompt_id), text,
              el("td", {}, ""), el("td", {class: "who"}, who), el("td", {}), el("td", {}));
    const st = el("span", {class: "status", "data-status": r.status}, t("st_" + r.status));
    tr.children[3].append(st);
    tr.children[5].append(audio);
    tr.children[6].append(up);
    body.append(tr);
  }
}
async function load() {
  try {
    P.data = await api("/api/prompts");
    render();
    document.body.dataset.loaded = String(Date.now());
  } catch (e) { $("action-error").textContent = e.message; }
}
async function upload() {
  const f = $("file").files[0], r = P.target;
  if (!f || !r) return;
  $("action-error").textContent = ""; $("upload-result").textContent = "";
  try {
    const res = await api(`/api/prompts/${r.lang}/${r.prompt_id}/recording`, {method: "POST", body: f, headers: {"Content-Type": "audio/wav"}});
    $("upload-result").textContent = `${t("uploaded")}${r.prompt_id} v${res.version}`;
    await load();
  } catch (e) { $("action-error").textContent = e.message; }
}
async function start() {
  const info = await api("/api/me");
  P.me = info.user; P.csrf = info.csrf;
  if (info.user.role === "wallboard") { location.href = "/wallboard"; return; }
  if (info.user.role === "agent") { location.href = "/desk"; return; }
  $("lang").addEventListener("change", render);
  $("status").addEventListener("change", render);
  $("file").addEventListener("change", upload);
  window.render = render;
  await load();
}
start();
