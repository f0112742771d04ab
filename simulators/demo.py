"""`hotline demo`: simulated agents and callers doing real calls through the running stack."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from rich.console import Console
from rich.table import Table

from simulators.audio import speech_wav
from core.config import REPO_ROOT, HotlineConfig
from dashboard.client import operator_api
from transcription.models import ModelRegistry

# wide enough for the tables when output goes to a file or CI log
console = Console(width=None if sys.stdout.isatty() else 150)


@dataclass(frozen=True)
class DemoCall:
    number: str
    dtmf: str          # 'secs:digit,...' after answer
    caller: str
    voice: str         # espeak-ng voice of the caller's speech
    words: str
    note: str


SCENARIOS = [
    DemoCall("083312348", "2:1,4:1", "13800000001", "cmn", "老板拖欠了我三个月的工资，我想咨询怎么讨薪。", "乐山 普通话 法律咨询"),
    DemoCall("02812348", "2:1,4:1,6:2", "13800000002", "cmn", "我想申请法律援助，需要带什么材料？", "成都 普通话 法律援助"),
    DemoCall("02812348", "2:3,4:2,6:3", "13800000003", "en-us", "I need help mediating a dispute with my landlord.", "Meishan, English, mediation"),
    DemoCall("083612348", "2:2,4:5", "13800000004", "cmn", "我要投诉。", "甘孜 藏语 服务投诉"),
    DemoCall("02812348", "2:1,4:3,6:4", "13800000005", "cmn", "请问公证需要多长时间？", "资阳 普通话 公证"),
    DemoCall("083712348", "2:2,4:1", "13800000006", "cmn", "我的牦牛被车撞了，怎么办？", "阿坝 藏语 法律咨询"),
    DemoCall("099912348", "", "13800000007", "cmn", "喂？", "unknown number: apology"),
]
AGENT_VOICE = "您好，这里是一二三四八公共法律服务热线，我是值班律师，请讲。"


def _api(cfg: HotlineConfig, path: str, method: str = "GET", body: dict | None = None):
    return operator_api(cfg, path, method, body, timeout=10)


def run_demo(cfg: HotlineConfig, calls: int = 7) -> int:
    work = cfg.state_dir / "demo"
    work.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    cli = [sys.executable, "-m", "hotline.cli", "--root", str(cfg.root), "--config-dir", str(cfg.config_dir)]
    console.rule("[bold]12348 演示 demo[/bold]: agents log in")
    agents = _agents_log_in(cfg, cli, env, work)
    console.rule("callers dial in")
    t0 = time.time()
    procs = _callers_dial(cli, env, work, calls)
    _agents_go_home(cfg, agents)
    ids = {cid for _, cid, _ in procs}
    records = [r for r in _api(cfg, "/api/calls?limit=200") if r["caller_number"] in ids
               and r["started_at"] and datetime.fromisoformat(r["started_at"]).timestamp() >= t0 - 1]
    _print_records(cfg, records)
    _transcripts(cfg, [r for r in records if r["outcome"] == "answered"])
    if hint := enable_mandarin_hint(cfg):
        console.print(f"Mandarin transcripts (普通话转写) need a Vosk model, one command away: [bold]{hint}[/bold]")
    _handoff(cfg, cli, env, work, [r for r in records if r["outcome"] == "answered"])
    c = cfg.system.controller
    console.print(f"status page: http://{c.http_host}:{c.http_port}/   agent desk: http://{c.http_host}:{c.http_port}/desk"
                  f"   (logins: {cfg.state_dir / 'initial-passwords.txt'})")
    console.print("stop the stack with [bold].venv/bin/hotline down[/bold]")
    # Every call must be on record and ended with a real outcome. Which ones are answered depends on the
    # hour: at night closed cities share the provincial pool, and a caller may give up or leave voicemail.
    handled = {"answered", "voicemail", "unknown_number", "abandoned", "callback_requested"}
    lost = [cid for _, cid, _ in procs if cid not in {r["caller_number"] for r in records}]
    odd = [r["caller_number"] for r in records if r["status"] != "ended" or r["outcome"] not in handled]
    answered = sum(1 for r in records if r["outcome"] == "answered")
    console.print(f"{len(records)} calls on record, {answered} answered by an agent"
                  + ("" if not any(r["after_hours"] for r in records) else " (some cities closed: night pool)"))
    if lost or odd:
        console.print(f"[red]calls without a proper record: {lost + odd}; see .hotline/demo/*.log[/red]")
        return 1
    return 0


def _agents_log_in(cfg: HotlineConfig, cli: list[str], env: dict, work) -> list[subprocess.Popen]:
    """Every configured agent at a pjsua2 softphone that answers by itself and speaks a greeting."""
    agent_wav = speech_wav(AGENT_VOICE, "cmn", work / "agent.wav")
    agents = []
    for a in cfg.agents:
        log = open(work / f"{a.id}.log", "wb")
        agents.append(subprocess.Popen(cli + ["agent", "--id", a.id, "--auto-answer", "--login", "--play", str(agent_wav),
                                              "--record-dir", str(work / "agent-audio")],
                                       stdout=log, stderr=subprocess.STDOUT, env=env))
    ready: list[dict] = []
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        ready = [a for a in _api(cfg, "/api/agents") if a["state"] == "ready"]
        if len(ready) == len(cfg.agents):
            break
        time.sleep(0.5)
    console.print(f"{len(ready)} agents ready: " + ", ".join(f"{a['name']}({','.join(a['queues'])})" for a in ready))
    return agents


def _callers_dial(cli: list[str], env: dict, work, calls: int) -> list[tuple[DemoCall, str, subprocess.Popen]]:
    """The scenarios' callers dial in 1.5 s apart; returns once every call is over."""
    scenarios = (SCENARIOS * (calls // len(SCENARIOS) + 1))[:calls]
    procs = []
    for i, sc in enumerate(scenarios):
        caller_id = f"{sc.caller[:-2]}{i:02d}"
        wav = speech_wav(sc.words, sc.voice, work / f"caller-{sc.caller}.wav")
        log = open(work / f"caller-{i}.log", "wb")
        procs.append((sc, caller_id, subprocess.Popen(
            cli + ["call", "--to", sc.number, "--caller", caller_id, "--dtmf", sc.dtmf, "--play", str(wav),
                   "--hangup-after", "25"], stdout=log, stderr=subprocess.STDOUT, env=env)))
        console.print(f"  {caller_id} → {sc.number}  {sc.note}")
        time.sleep(1.5)
    for _, _, p in procs:
        try:
            p.wait(120)
        except subprocess.TimeoutExpired:
            p.kill()
    time.sleep(1.5)
    return procs


def _agents_go_home(cfg: HotlineConfig, agents: list[subprocess.Popen]) -> None:
    for a in cfg.agents:  # log them out of their queues
        _api(cfg, f"/api/agents/{a.id}/logout", "POST", {})
    for p in agents:
        p.send_signal(signal.SIGTERM)
    for p in agents:
        try:
            p.wait(10)
        except subprocess.TimeoutExpired:
            p.kill()


def _print_records(cfg: HotlineConfig, records: list[dict]) -> None:
    detail = Table("caller", "dialed", "city", "lang", "IVR path", "agent", "outcome", "wait s", "talk s",
                   title="calls / 通话记录")
    for r in sorted(records, key=lambda r: r["caller_number"]):
        detail.add_row(r["caller_number"], r["dialed_number"], r["city"] or "-", r["language"] or "-", r["ivr_path"] or "-",
                       r["agent"] or "-", r["outcome"], _f(r["wait_seconds"]), _f(r["talk_seconds"]))
    console.print(detail)
    per_city: dict[str, list[dict]] = {}
    for r in records:
        per_city.setdefault(r["city"] or "(unknown number)", []).append(r)
    t = Table("city / 城市", "calls", "answered", "avg wait s", "avg talk s", title="summary per city / 各市汇总")
    names = {c.id: f"{c.names.zh} {c.names.en}" for c in cfg.cities}
    for city, rs in sorted(per_city.items()):
        answered = [r for r in rs if r["outcome"] == "answered"]
        t.add_row(names.get(city, city), str(len(rs)), str(len(answered)),
                  _f(_avg([r["wait_seconds"] for r in answered])), _f(_avg([r["talk_seconds"] for r in answered])))
    console.print(t)


def _transcripts(cfg: HotlineConfig, answered: list[dict]) -> None:
    """What the transcriber made of the answered calls (no_model until the operator installs one)."""
    if not cfg.system.transcription.enabled or not answered:
        return
    deadline = time.monotonic() + 60
    rows: dict[str, dict] = {}
    while time.monotonic() < deadline:
        for r in answered:
            try:
                rows[r["call_id"]] = _api(cfg, f"/api/calls/{r['call_id']}/transcript?reason=demo")
            except Exception as e:   # not written yet
                rows[r["call_id"]] = {"status": "pending", "reason": str(e)}
        if all(x["status"] not in ("pending", "running") for x in rows.values()):
            break
        time.sleep(2)
    t = Table("caller", "lang", "transcript", "text / reason", title="transcripts / 通话转写")
    for r in sorted(answered, key=lambda r: r["caller_number"]):
        x = rows.get(r["call_id"], {})
        text = x.get("text") or x.get("reason") or ""
        t.add_row(r["caller_number"], r["language"] or "-", x.get("status", "-"), text[:80])
    console.print(t)
    if any(x.get("status") == "no_model" for x in rows.values()):
        console.print("no Vosk model installed for these languages: see docs/transcription.md")


def enable_mandarin_hint(cfg: HotlineConfig) -> str | None:
    """The one command that would give Mandarin calls transcripts, while no zh model is installed."""
    if not cfg.system.transcription.enabled or ModelRegistry(cfg).locate("zh"):
        return None
    exe = Path(sys.executable).parent / "hotline"
    root = "" if cfg.root == REPO_ROOT else f" --root {cfg.root}"
    return f"{exe.relative_to(cfg.root) if exe.is_relative_to(cfg.root) else exe}{root} models install zh"


def _handoff(cfg: HotlineConfig, cli: list[str], env: dict, work, answered: list[dict]) -> None:
    """One consultation that is not a legal matter goes to 12345 (the simulator plays 12345)."""
    from urllib.parse import urlsplit

    from simulators.partner_hotline import refusal

    if not answered or not cfg.system.interop.enabled:
        return
    url = urlsplit(cfg.partners["12345"].endpoint(answered[0]["city"]) or "")
    c = cfg.system.controller
    if refusal(True, "127.0.0.1", f"http://{c.http_host}:{c.http_port}", cfg.partners["12345"].endpoints):
        return   # a real 12345 is configured (or 12348 is off loopback): the simulator would refuse to run
    sim = subprocess.Popen(cli + ["simulate-12345", "--test-only", "--port", str(url.port or 80)], env=env,
                           stdout=open(work / "sim12345.log", "wb"), stderr=subprocess.STDOUT)
    try:
        time.sleep(1.5)
        t = _api(cfg, f"/api/calls/{answered[0]['call_id']}/ticket")
        _api(cfg, f"/api/tickets/{t['id']}", "PATCH", {"category": "other", "summary": "小区噪音扰民，非法律问题，转12345"})
        _api(cfg, f"/api/tickets/{t['id']}/handoff", "POST", {"partner": "12345", "consent": False})
        deadline = time.monotonic() + 30
        h = {}
        while time.monotonic() < deadline:
            h = _api(cfg, f"/api/tickets/{t['id']}/handoffs")[0]
            if h["status"] == "resolved":
                break
            time.sleep(1)
        table = Table("ticket", "to", "12345 ticket", "status", "updates", title="handoff to 12345 / 转办12345")
        table.add_row(str(t["id"]), h.get("partner", ""), h.get("partner_ticket_id", ""), h.get("status", ""),
                      str(h.get("status_seq", 0)))
        console.print(table)
    except Exception as e:   # the demo goes on; the outbox keeps the message for later
        console.print(f"[yellow]handoff to 12345 not shown: {e}[/yellow]")
    finally:
        sim.terminate()
        sim.wait(10)


def _avg(xs):
    xs = [x for x in xs if x is not None]
    return sum(xs) / len(xs) if xs else None


def _f(x):
    return "-" if x is None else f"{x:.1f}"
