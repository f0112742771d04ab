// Historical reports: /api/reports (KPIs per day, hour, agent) and /api/stats (categories,
// satisfaction; also the CSV/XLSX export), drawn with the locally served ECharts.
const R = {info: {}, charts: {}, data: null, stats: null};
const $ = (id) => document.getElementById(id);
async function api(path) {
  const r = await fetch(path);
  if (r.status === 401) { location.href = "/login?next=/reports"; throw new Error("login"); }
  const data = await r.json().catch(() => ({}));
  if (!r.ok) throw new Error(data.error || r.statusText);
  return data;
}
function chart(id) { return R.charts[id] || (R.charts[id] = echarts.init($(id))); }
function query() {
  const p = new URLSearchParams({from: $("from").value, to: $("to").value});
  if ($("city").value) p.set("city", $("city").value);
  return p;
}
function draw() {
  applyI18n();
  const d = R.data, s = R.stats;
  if (!d) return;
  // the exports' headers and city names follow the page's language (Chinese unless switched)
  $("csv").href = `/api/stats?period=day&format=csv&lang=${LANG}&` + R.q;
  $("xlsx").href = `/api/stats?period=day&format=xlsx&lang=${LANG}&` + R.q;
  const days = d.days.map(x => x.date);
  chart("ch-volume").setOption({tooltip: {trigger: "axis"}, legend: {}, xAxis: {type: "category", data: days}, yAxis: {type: "value"},
    series: [{name: t("calls_n"), type: "bar", data: d.days.map(x => x.calls)},
             {name: t("answered_n"), type: "bar", data: d.days.map(x => x.answered)},
             {name: t("abandoned_n"), type: "bar", data: d.days.map(x => x.abandoned)}]}, true);
  chart("ch-sl").setOption({tooltip: {trigger: "axis"}, xAxis: {type: "category", data: days},
    yAxis: {type: "value", max: 100, axisLabel: {formatter: "{value}%"}},
    series: [{name: t("sl"), type: "line", data: d.days.map(x => x.service_level === null ? null : Math.round(x.service_level * 1000) / 10)}]}, true);
  chart("ch-hour").setOption({tooltip: {trigger: "axis"}, xAxis: {type: "category", data: [...Array(24).keys()].map(h => h + ":00")},
    yAxis: {type: "value"}, series: [{name: t("calls_n"), type: "bar", data: d.hours}]}, true);
  const cats = {};
  const rows = (s || []).filter(r => r.city === (d.city || "province"));
  for (const r of rows) for (const [k, v] of Object.entries(r.by_category || {})) cats[k] = (cats[k] || 0) + v;
  const names = R.info.ticket_categories || {};
  chart("ch-category").setOption({tooltip: {trigger: "item"}, series: [{type: "pie", radius: "65%",
    data: Object.entries(cats).map(([k, v]) => ({name: (names[k] && (names[k][LANG] || names[k].zh)) || t(k), value: v}))}]}, true);
  chart("ch-satisfaction").setOption({tooltip: {trigger: "axis"}, xAxis: {type: "category", data: rows.map(r => r.period)},
    yAxis: {type: "value", min: 1, max: 5}, series: [{name: t("satisfaction"), type: "line", data: rows.map(r => r.satisfaction)}]}, true);
  chart("ch-agents").setOption({tooltip: {trigger: "axis"}, xAxis: {type: "category", data: d.agents.map(a => (R.info.agents || {})[a.agent] || a.agent)},
    yAxis: {type: "value"}, series: [{name: t("answered_n"), type: "bar", data: d.agents.map(a => a.answered)}]}, true);
  $("total").textContent = `${t("calls_n")} ${d.total.calls} · ${t("sl")} ${d.total.service_level === null ? "—" : Math.round(d.total.service_level * 100) + "%"}`;
}
async function show() {
  $("action-error").textContent = "";
  try {
    const q = query();
    R.data = await api("/api/reports?" + q);
    R.stats = await api("/api/stats?period=day&" + q);
    R.q = q;
    draw();
    document.body.dataset.loaded = "1";
  } catch (e) { $("action-error").textContent = e.message; }
}
async function start() {
  const info = await api("/api/me");
  R.info = info;
  if (info.user.role === "wallboard") { location.href = "/wallboard"; return; }
  const sel = $("city");
  if (info.user.role === "command") sel.add(new Option("全省 Province", ""));
  for (const [id, n] of Object.entries(info.cities)) {
    if (info.user.role === "command" || info.user.cities.includes(id)) sel.add(new Option(n.zh + " " + n.en, id));
  }
  const today = new Date(), weekAgo = new Date(Date.now() - 6 * 86400e3);
  $("to").value = today.toISOString().slice(0, 10); $("from").value = weekAgo.toISOString().slice(0, 10);
  $("show").onclick = show;
  window.render = draw;
  await show();
}
start();
