// The desk's browser phone: registers the agent's SIP account over secure WebSocket (sip.js, served
// locally), rings with the screen-pop, answers, hangs up, mutes the microphone and sends DTMF (RFC 4733).
// Hold and transfers are the desk's own buttons (Asterisk holds the caller with music).
// A phone that cannot work (microphone denied, missing or lost, no server) says why and pauses the
// agent with reason "phone": no call is offered until it is fixed.
import { Registerer, RegistererState, SessionState, UserAgent } from "/vendor/sip.js/api/index.js";

const P = window.PHONE = {browser: false, ready: false, state: "off", error: "", session: null, stats: null, quality: null, muted: false};
const el = (id) => document.getElementById(id);
let mic = null, ua = null, statsTimer = null, sent = 0;

async function call(path, method = "GET", body) {
  const opts = {method, headers: {"Content-Type": "application/json"}};
  if (method !== "GET") opts.headers["X-CSRF-Token"] = S.csrf;
  if (body !== undefined) opts.body = JSON.stringify(body);
  const r = await fetch(path, opts);
  const data = await r.json().catch(() => ({}));
  if (!r.ok) throw new Error(data.error || r.statusText);
  return data;
}

function show() {
  const box = el("phone");
  box.hidden = !P.browser;
  box.dataset.state = P.state;
  const st = el("phone-state");
  st.dataset.state = P.state;
  st.textContent = t({off: "ph_off", connecting: "ph_connecting", registered: "ph_registered", ringing: "ph_ringing",
                      talking: "ph_talking", not_ready: "ph_not_ready"}[P.state]);
  el("phone-error").hidden = !P.error;
  el("phone-error").textContent = P.error ? t(P.error) : "";
  el("btn-phone-answer").disabled = P.state !== "ringing";
  el("btn-phone-hangup").disabled = !(P.state === "ringing" || P.state === "talking");
  const muted = P.state === "talking" && P.muted;
  el("btn-phone-mute").disabled = P.state !== "talking" || muted;
  el("btn-phone-unmute").disabled = !muted;
  el("phone-muted").hidden = !muted;
  for (const b of document.querySelectorAll("#keypad .dtmf")) b.disabled = P.state !== "talking";
  const q = P.quality;
  el("phone-quality").textContent = q && P.state === "talking"
    ? `${t("quality")}: ${t("jitter")} ${q.jitter_ms.toFixed(1)} ms · ${t("loss")} ${q.loss_pct.toFixed(1)}% · ${t("rtt")} ${q.rtt_ms == null ? "–" : q.rtt_ms.toFixed(0) + " ms"}`
    : "";
  if (window.render) window.render();
}

function setState(state) { P.state = state; P.ready = state === "registered" || state === "ringing" || state === "talking"; show(); }

// the phone cannot work: say why, keep calls away (pause with reason "phone"), stop ringing
async function notReady(error) {
  P.error = error;
  setState("not_ready");
  if (ua) { try { await ua.stop(); } catch (e) { /* already down */ } }
  const me = S.agents[S.me.agent_id];
  if (me && me.state !== "logged_out" && !(me.paused && me.pause_reason === "phone")) {
    try { await call("/api/agents/" + encodeURIComponent(S.me.agent_id) + "/pause", "POST", {reason: "phone"}); }
    catch (e) { /* the desk shows the state it gets over /ws */ }
  }
}

function deviceError(e) {
  const name = e && e.name;
  if (name === "NotAllowedError" || name === "SecurityError") return "dev_denied";
  if (name === "NotFoundError" || name === "OverconstrainedError") return "dev_missing";
  if (name === "NotReadableError" || name === "AbortError") return "dev_busy";
  return "dev_unavailable";
}

async function openMicrophone() {
  if (!navigator.mediaDevices || !navigator.mediaDevices.getUserMedia) throw {name: "NotSupportedError"};
  const stream = await navigator.mediaDevices.getUserMedia({audio: true, video: false});
  for (const tr of stream.getAudioTracks()) tr.addEventListener("ended", () => notReady("dev_lost"));
  return stream;
}

async function start() {
  const acct = await call("/api/phone");
  P.browser = !!acct.browser;
  if (!P.browser) { show(); return; }
  setState("connecting");
  try { mic = await openMicrophone(); } catch (e) { await notReady(deviceError(e)); return; }
  ua = new UserAgent({
    uri: UserAgent.makeURI(acct.uri), displayName: acct.display_name,
    authorizationUsername: acct.username, authorizationPassword: acct.password,
    transportOptions: {server: acct.ws_url}, logLevel: "warn",
    // our own microphone stream for every call (opened above, so a device error shows before a call)
    sessionDescriptionHandlerFactoryOptions: {iceGatheringTimeout: 1000, peerConnectionConfiguration: {iceServers: []}},
    // a lost WebSocket (Asterisk restarted, network gone) is an error; our own stop() is not
    delegate: {onInvite: incoming, onDisconnect: (err) => { if (err && P.state !== "not_ready") notReady("dev_register"); }},
  });
  try {
    await ua.start();
    const reg = new Registerer(ua, {expires: 120});
    reg.stateChange.addListener((s) => {
      if (s === RegistererState.Registered && P.state === "connecting") { P.error = ""; setState("registered"); }
    });
    await reg.register({requestDelegate: {onReject: () => notReady("dev_register")}});
  } catch (e) { await notReady("dev_register"); }
}

function incoming(invitation) {
  if (P.session || P.state !== "registered") { invitation.reject({statusCode: 486}); return; }   // one call at a time
  P.session = invitation;
  invitation.stateChange.addListener((s) => {
    if (s === SessionState.Established) { setState("talking"); attach(invitation); }
    else if (s === SessionState.Terminated) ended();
  });
  setState("ringing");
}

function attach(session) {
  const sdh = session.sessionDescriptionHandler;
  const audio = el("phone-audio");
  audio.srcObject = sdh.remoteMediaStream;
  audio.play().catch(() => { /* autoplay refused: stats still flow */ });
  sent = 0;
  statsTimer = setInterval(() => measure(sdh.peerConnection), 1000);
}

async function measure(pc) {
  if (!pc) return;
  const report = await pc.getStats();
  let inbound = null, remote = null, pair = null;
  report.forEach((s) => {
    if (s.type === "inbound-rtp" && s.kind === "audio") inbound = s;
    else if (s.type === "remote-inbound-rtp" && s.kind === "audio") remote = s;
    else if (s.type === "candidate-pair" && s.nominated && s.state === "succeeded") pair = s;
  });
  if (!inbound) return;
  P.stats = {audioLevel: inbound.audioLevel || 0, totalAudioEnergy: inbound.totalAudioEnergy || 0,
             packetsReceived: inbound.packetsReceived || 0, packetsLost: inbound.packetsLost || 0,
             jitter: inbound.jitter || 0,
             roundTripTime: remote && remote.roundTripTime != null ? remote.roundTripTime
               : (pair && pair.currentRoundTripTime != null ? pair.currentRoundTripTime : null)};
  const expected = P.stats.packetsReceived + Math.max(0, P.stats.packetsLost);
  const prev = P.quality;
  P.quality = {jitter_ms: Math.max(prev ? prev.jitter_ms : 0, P.stats.jitter * 1000),
               loss_pct: expected ? 100 * Math.max(0, P.stats.packetsLost) / expected : 0,
               rtt_ms: P.stats.roundTripTime == null ? (prev ? prev.rtt_ms : null) : P.stats.roundTripTime * 1000};
  show();
  // stored with the call record: every 5 s during the call, and at its end (ended())
  if (++sent % 5 === 0) report_quality();
}

function report_quality() {
  const pop = el("pop");
  if (!P.quality || !pop.dataset.callId) return;
  call("/api/calls/" + encodeURIComponent(pop.dataset.callId) + "/quality", "PUT", P.quality).catch(() => {});
}

function ended() {
  if (statsTimer) { clearInterval(statsTimer); statsTimer = null; report_quality(); }
  P.session = null;
  P.muted = false;
  if (P.state !== "not_ready") setState("registered");
}

function senders() {
  const pc = P.session && P.session.sessionDescriptionHandler && P.session.sessionDescriptionHandler.peerConnection;
  return pc ? pc.getSenders().filter(s => s.track && s.track.kind === "audio") : [];
}

function wire() {
  el("btn-phone-answer").onclick = () => {
    if (!P.session || P.state !== "ringing") return;
    P.session.accept({sessionDescriptionHandlerOptions: {constraints: {audio: true, video: false}}}).catch(() => ended());
  };
  el("btn-phone-hangup").onclick = () => {
    const s = P.session;
    if (!s) return;
    if (s.state === SessionState.Established) s.bye(); else s.reject();
  };
  const mute = (on) => { for (const s of senders()) s.track.enabled = !on; P.muted = on; show(); };
  el("btn-phone-mute").onclick = () => mute(true);
  el("btn-phone-unmute").onclick = () => mute(false);
  for (const b of document.querySelectorAll("#keypad .dtmf")) {
    b.onclick = () => {
      const sdh = P.session && P.session.sessionDescriptionHandler;
      if (sdh && P.state === "talking") sdh.sendDtmf(b.dataset.key, {duration: 160, interToneGap: 80});
    };
  }
  document.addEventListener("click", (e) => { if (e.target && e.target.id === "lang-toggle") show(); });
}

function begin() {
  if (!S.me || S.me.role !== "agent") return;
  wire();
  start().catch(() => notReady("dev_register"));
}
if (typeof S !== "undefined" && S.me) begin(); else window.addEventListener("desk-ready", begin, {once: true});
