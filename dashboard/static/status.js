// the status page (no inline script or onclick: the Content-Security-Policy allows only our own files)
let lang = "zh";
function toggle(){ lang = lang === "zh" ? "en" : "zh"; document.getElementById("lang").textContent = lang === "zh" ? "English" : "中文"; label(); }
function label(){ document.querySelectorAll("[data-zh]").forEach(e => e.textContent = e.dataset[lang]); }
function cell(row, v){ const td = document.createElement("td"); td.textContent = v ?? ""; row.appendChild(td); }
async function refresh(){
  const r = await fetch("/api/status");
  if (r.status === 401) { location.href = "/login?next=/"; return; }
  if (r.status === 403) { location.href = "/desk"; return; }
  const s = await r.json();
  const ami = document.getElementById("ami");
  ami.textContent = s.asterisk.ami_connected ? (lang === "zh" ? "正常" : "up") : (lang === "zh" ? "断开" : "down");
  ami.className = s.asterisk.ami_connected ? "ok" : "bad";
  const cb = document.querySelector("#calls tbody"); cb.innerHTML = "";
  for (const c of s.calls_in_progress){ const r = cb.insertRow(); [c.city, c.language, c.ivr_path, c.status, c.agent].forEach(v => cell(r, v)); }
  const ab = document.querySelector("#agents tbody"); ab.innerHTML = "";
  for (const a of s.agents){ const r = ab.insertRow(); [a.id, a.name, a.state, a.queues.join(", ")].forEach(v => cell(r, v)); }
}
document.getElementById("lang").addEventListener("click", toggle);
label(); refresh(); setInterval(refresh, 2000);
