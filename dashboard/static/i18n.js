// zh-CN first; English on request (remembered in this browser)
const TEXT = {
  zh: {
    title: "12348 公共法律服务热线", subtitle: "坐席与值班长登录", user: "工号", password: "密码", submit: "登录",
    login_failed: "登录失败", login_throttled: "尝试次数过多，请 {s} 秒后再试", lang: "English", logout: "退出", desk: "坐席工作台", state: "状态",
    st_logged_out: "未签入", st_ready: "就绪", st_paused: "小休", st_on_call: "通话中", st_wrap_up: "话后整理",
    sign_in: "签入", ready: "就绪", pause: "小休", sign_out: "签出",
    r_meal: "用餐", r_rest: "休息", r_training: "培训", r_meeting: "会议", r_after_call_work: "话后处理", r_outbound: "外呼", r_other: "其他", r_login: "刚签入",
    no_call: "当前无来电", incoming: "来电振铃", connected: "通话中", ended: "通话已结束",
    city: "城市", language: "语言", ivr_path: "导航路径", green: "绿色通道", caller: "来电号码", queue: "队列", waited: "等待",
    seconds: "秒", previous: "历史来电", tickets: "历史工单", none: "无",
    notes: "通话小记", save: "保存", saved: "已保存", hold: "保持", resume: "恢复通话", mute: "静音", unmute: "取消静音",
    hangup: "挂断", transfer: "转接", blind: "直接转接", attended: "咨询转接", complete: "完成转接", cancel: "取消转接",
    t_agent: "坐席", t_queue: "队列", t_city: "城市", t_external: "外部热线",
    live_calls: "本辖区通话", agents: "坐席", listen: "监听", whisper: "耳语", barge: "强插", actions: "操作",
    lang_zh: "普通话", lang_bo: "藏语", lang_en: "英语", wrapup_left: "整理剩余", connection_lost: "连接中断，正在重连…",
    ticket: "本次工单", category: "类别", outcome: "办理结果", follow_up: "需回访", summary: "咨询内容摘要", answer: "解答意见",
    resolve: "办结", refer: "转办", close_ticket: "关闭工单", ts_open: "待处理", ts_in_progress: "处理中", ts_resolved: "已办结",
    ts_referred: "已转办", ts_closed: "已关闭", no_ticket_yet: "接通后自动生成工单", ask_place: "请询问来电人相关地点",
    prescreen: "法律援助预审", household: "家庭人口", income: "家庭月收入（元）", place_act: "事发地", place_respondent: "对方住所地",
    run_prescreen: "预审", appointment: "预约法律援助", book: "预约",
    e_likely: "可能符合法律援助条件", e_not: "可能不符合经济困难标准", e_needs_review: "需法律援助机构审查",
    documents: "需携带材料", jurisdiction: "受理机构所在地", threshold: "人均收入标准", booked: "已预约，预约号",
    m_wage_arrears: "欠薪", m_work_injury: "工伤", m_labour_dispute: "劳动争议", m_maintenance: "赡养抚养扶养",
    m_social_insurance: "社会保险与低保", m_pension_relief: "抚恤金救济金", m_state_compensation: "国家赔偿",
    m_domestic_violence: "家庭暴力虐待遗弃", m_traffic: "交通事故", m_medical: "医疗损害", m_food_drug: "食品药品",
    m_pollution: "环境污染", m_fake_agri_inputs: "假冒农资", m_civil_litigation: "民事诉讼", m_criminal_defence: "刑事辩护", m_other: "其他",
    g_migrant_worker: "农民工", g_five_guarantees: "五保户", g_unemployment_benefit: "领取失业金", g_minimum_pension: "领取最低养老金",
    g_disaster: "受灾困难", g_severe_disability_no_income: "重度残疾无收入", g_military: "军人军属",
    cs_ivr: "语音导航", cs_queued: "排队中", cs_talking: "通话中", cs_voicemail: "留言中", cs_ended: "已结束",
    live_transcript: "实时转写", sp_caller: "来电人", sp_agent: "坐席", sp_mixed: "混音", transcript_waiting: "通话开始后显示转写文字",
    kw_alerts: "关键词告警", ack: "确认", acked: "已确认", topic: "类别", term: "关键词", phase_live: "通话中", phase_post_call: "通话后",
    no_alerts: "暂无未确认告警", time: "时间",
    wallboard: "全省12348指挥中心 · 实时大屏", waiting: "排队", longest: "最长等待", logged_in: "签入", on_call: "通话",
    paused_n: "小休", wrap_n: "整理", ready_n: "就绪", sl: "服务水平", abandon: "放弃率", calls_today: "今日来电", asa: "平均应答",
    closed: "非工作时间", alarms: "告警", al_no_agent: "工作时间无坐席签入", al_long_wait: "等待超时", al_low_service_level: "服务水平偏低",
    al_keyword: "关键词", al_dead_letter: "转办投递失败", al_node_stale: "城市节点失联", unclassified: "未分类", city_detail: "城市详情", live_calls_city: "在线通话", updated: "更新于",
    desk_link: "坐席工作台", reports: "统计报表", report_title: "12348 统计报表", from: "从", to: "至", show: "查询",
    export_csv: "导出 CSV", export_xlsx: "导出 Excel", volume_day: "每日来电量", volume_hour: "来电时段分布",
    sl_trend: "服务水平趋势", by_category: "咨询类别", satisfaction: "满意度（回访）", per_agent: "坐席接听量",
    answered_n: "接通", calls_n: "来电", abandoned_n: "放弃", province: "全省", wallboard_link: "实时大屏",
    yes: "是", error: "操作失败", phone_offline: "话机未注册：来电无法接到，请检查话机",
  },
  en: {
    title: "12348 Legal Service Hotline", subtitle: "Agent and supervisor sign-in", user: "User ID", password: "Password", submit: "Sign in",
    login_failed: "Sign-in failed", login_throttled: "Too many attempts; try again in {s} s", lang: "中文", logout: "Sign out", desk: "Agent desk", state: "State",
    st_logged_out: "Signed out", st_ready: "Ready", st_paused: "Paused", st_on_call: "On a call", st_wrap_up: "Wrap-up",
    sign_in: "Log in to queues", ready: "Ready", pause: "Pause", sign_out: "Log out of queues",
    r_meal: "Meal", r_rest: "Rest", r_training: "Training", r_meeting: "Meeting", r_after_call_work: "After-call work", r_outbound: "Outbound", r_other: "Other", r_login: "Just logged in",
    no_call: "No call", incoming: "Ringing", connected: "Connected", ended: "Call ended",
    city: "City", language: "Language", ivr_path: "IVR path", green: "Green channel", caller: "Caller", queue: "Queue", waited: "Waited",
    seconds: "s", previous: "Previous calls", tickets: "Earlier tickets", none: "none",
    notes: "Call notes", save: "Save", saved: "Saved", hold: "Hold", resume: "Resume", mute: "Mute", unmute: "Unmute",
    hangup: "Hang up", transfer: "Transfer", blind: "Blind transfer", attended: "Consult first", complete: "Complete transfer", cancel: "Cancel transfer",
    t_agent: "Agent", t_queue: "Queue", t_city: "City", t_external: "Other hotline",
    live_calls: "Live calls in my cities", agents: "Agents", listen: "Listen", whisper: "Whisper", barge: "Barge", actions: "Actions",
    lang_zh: "Mandarin", lang_bo: "Tibetan", lang_en: "English", wrapup_left: "wrap-up left", connection_lost: "Connection lost, reconnecting…",
    ticket: "Ticket", category: "Category", outcome: "Outcome", follow_up: "Follow-up visit", summary: "What the caller asked", answer: "Advice given",
    resolve: "Resolve", refer: "Refer", close_ticket: "Close", ts_open: "Open", ts_in_progress: "In progress", ts_resolved: "Resolved",
    ts_referred: "Referred", ts_closed: "Closed", no_ticket_yet: "A ticket is created when the call is answered", ask_place: "ask the caller where",
    prescreen: "Legal-aid pre-screen", household: "Household size", income: "Household income / month (yuan)", place_act: "Where it happened",
    place_respondent: "Other party lives in", run_prescreen: "Pre-screen", appointment: "Legal-aid appointment", book: "Book",
    e_likely: "Likely eligible for legal aid", e_not: "Likely above the hardship standard", e_needs_review: "The legal-aid office must review",
    documents: "Documents to bring", jurisdiction: "Apply in", threshold: "Income standard per person", booked: "Booked, reference",
    m_wage_arrears: "Wage arrears", m_work_injury: "Work injury", m_labour_dispute: "Labour dispute", m_maintenance: "Maintenance/support",
    m_social_insurance: "Social insurance, minimum living allowance", m_pension_relief: "Pensions, relief", m_state_compensation: "State compensation",
    m_domestic_violence: "Domestic violence, abuse", m_traffic: "Traffic accident", m_medical: "Medical injury", m_food_drug: "Food and drugs",
    m_pollution: "Pollution", m_fake_agri_inputs: "Fake farm supplies", m_civil_litigation: "Civil litigation", m_criminal_defence: "Criminal defence", m_other: "Other",
    g_migrant_worker: "Migrant worker", g_five_guarantees: "Five-guarantee household", g_unemployment_benefit: "Unemployment benefit",
    g_minimum_pension: "Minimum pension", g_disaster: "Disaster hardship", g_severe_disability_no_income: "Severe disability, no income", g_military: "Military family",
    cs_ivr: "In IVR", cs_queued: "Waiting", cs_talking: "Talking", cs_voicemail: "Voicemail", cs_ended: "Ended",
    live_transcript: "Live transcript", sp_caller: "Caller", sp_agent: "Agent", sp_mixed: "Mixed", transcript_waiting: "Text appears once the call is connected",
    kw_alerts: "Keyword alerts", ack: "Acknowledge", acked: "Acknowledged", topic: "Topic", term: "Term", phase_live: "during the call", phase_post_call: "after the call",
    no_alerts: "No open alerts", time: "Time",
    wallboard: "Sichuan 12348 command center · live wallboard", waiting: "Waiting", longest: "Longest wait", logged_in: "Logged in",
    on_call: "On call", paused_n: "Paused", wrap_n: "Wrap-up", ready_n: "Ready", sl: "Service level", abandon: "Abandoned",
    calls_today: "Calls today", asa: "ASA", closed: "Closed", alarms: "Alarms", al_no_agent: "Open, no agent logged in",
    al_long_wait: "Long wait", al_low_service_level: "Low service level", al_keyword: "Keyword", al_dead_letter: "Handoff failed", al_node_stale: "City node silent", unclassified: "Unclassified",
    city_detail: "City detail", live_calls_city: "Live calls", updated: "Updated", desk_link: "Agent desk",
    reports: "Reports", report_title: "12348 reports", from: "From", to: "To", show: "Show", export_csv: "Export CSV",
    export_xlsx: "Export Excel", volume_day: "Calls per day", volume_hour: "Calls by hour of day", sl_trend: "Service level",
    by_category: "Consultations by category", satisfaction: "Satisfaction (follow-ups)", per_agent: "Answered per agent",
    answered_n: "Answered", calls_n: "Calls", abandoned_n: "Abandoned", province: "Province", wallboard_link: "Wallboard",
    yes: "yes", error: "Action failed", phone_offline: "Phone not registered: calls cannot reach you, check your phone",
  },
};
let LANG = localStorage.getItem("hl_lang") || "zh";
function t(key) { return (TEXT[LANG] && TEXT[LANG][key]) || TEXT.zh[key] || key; }
function applyI18n() {
  document.documentElement.lang = LANG === "zh" ? "zh-CN" : "en";
  document.querySelectorAll("[data-i18n]").forEach(e => { e.textContent = t(e.dataset.i18n); });
  document.querySelectorAll("[data-i18n-placeholder]").forEach(e => { e.placeholder = t(e.dataset.i18nPlaceholder); });
  const b = document.getElementById("lang-toggle");
  if (b) b.textContent = t("lang");
}
document.addEventListener("click", (e) => {
  if (e.target && e.target.id === "lang-toggle") {
    LANG = LANG === "zh" ? "en" : "zh";
    localStorage.setItem("hl_lang", LANG);
    applyI18n();
    if (window.render) window.render();
  }
});
// the cluster's nodes (wallboard panel, docs/scale-out-state.md)
Object.assign(TEXT.zh, {nodes: "节点", node_health_up: "正常", node_health_down: "故障", node_health_stale: "失联",
  node_last_seen: "最后心跳", node_serves: "负责城市", node_standby_for: "代管", node_this: "本节点"});
Object.assign(TEXT.en, {nodes: "Nodes", node_health_up: "Up", node_health_down: "Down", node_health_stale: "Stale",
  node_last_seen: "Last seen", node_serves: "Serves", node_standby_for: "standby for", node_this: "this node"});
