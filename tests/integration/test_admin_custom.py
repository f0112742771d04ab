"""Issue 17 item 5: the admin's place in the Asterisk config. A SIP endpoint written into
custom/pjsip_custom.conf and dialplan hooks written into custom/extensions_custom.conf survive
`hotline setup` (which rewrites every generated file) and an Asterisk restart: the endpoint registers
with its password and the hooks run on a real call, which goes on along its default path. A module
named in asterisk.extra_modules is loaded."""
from __future__ import annotations

import secrets
import subprocess
import sys

import pytest

from callcenter.asterisk.runtime import AsteriskInstance, AsteriskRuntimeError
from core.config import load_config
from tests.helpers import ROOT, Stack, terminate, wait_for
from tests.sip_probe import SipProbe

PHONE = "admin-lobby"     # a lobby phone the admin adds by hand: no agent, not in config/agents.yaml

HOOKS = """
[hotline-hook-inbound]
exten => s,1,Set(DB(hltest/inbound)=${HOTLINE_DID}-${HOTLINE_CITY})
 same => n,Return()

[hotline-hook-hangup]
exten => s,1,Set(DB(hltest/hangup)=${HOTLINE_CITY}-${HOTLINE_IVR_PATH})
 same => n,Return()

[hotline-hook-voicemail]
exten => s,1,Set(DB(hltest/voicemail)=${HOTLINE_CITY})
 same => n,Return()
"""


@pytest.fixture(scope="module")
def own_stack(tmp_path_factory):
    s = Stack(tmp_path_factory.mktemp("custom"))
    # a module the platform does not load: the admin asks for it in config/hotline.yaml
    s.overrides["asterisk"]["extra_modules"] = ["app_milliwatt.so"]
    s.reconfigure()
    s.start()
    yield s
    for p in s.parties:
        p.stop()
    s.close()


def custom(s: Stack, name: str):
    p = s.asterisk.paths
    return p.host(p.etc / "custom" / name)


def astdb(s: Stack, key: str) -> str:
    out = s.asterisk.rx(f"database get hltest {key}")
    return out.split("Value:", 1)[1].strip() if "Value:" in out else ""


def register(s: Stack, password: str) -> int:
    a = s.cfg.system.asterisk
    with SipProbe((a.sip_bind, a.sip_port), "127.0.0.1", timeout=5) as probe:
        answers = probe.request("REGISTER", PHONE, password=password)
    assert answers, "Asterisk did not answer the REGISTER"
    return answers[-1].status


def test_custom_endpoint_and_hooks_survive_setup_and_restart(own_stack):
    s = own_stack
    pjsip, plan = custom(s, "pjsip_custom.conf"), custom(s, "extensions_custom.conf")
    # setup made them, empty but for the header, and only the owner may read the SIP one (passwords)
    lines = pjsip.read_text().splitlines()
    assert lines[0].startswith("; custom/pjsip_custom.conf") and all(line.startswith(";") for line in lines)
    assert pjsip.stat().st_mode & 0o077 == 0

    password = secrets.token_urlsafe(18)
    pjsip.write_text(pjsip.read_text() + f"""
[{PHONE}]
type = endpoint
context = hotline-refuse
disallow = all
allow = alaw
auth = {PHONE}
aors = {PHONE}

[{PHONE}]
type = auth
auth_type = userpass
username = {PHONE}
password = {password}

[{PHONE}]
type = aor
max_contacts = 1
""")
    mods = custom(s, "modules_custom.conf")
    mods.write_text(mods.read_text() + "[modules](+)\nload = app_morsecode.so\n")
    generated = s.asterisk.paths.host(s.asterisk.paths.etc / "extensions.conf")
    # a misspelt hook would never run: setup refuses it, names it and leaves the running config alone
    plan.write_text(plan.read_text() + HOOKS.replace("hook-hangup", "hook-hangpu"))
    generated.write_text(generated.read_text() + "; untouched\n")
    res = subprocess.run([sys.executable, "-m", "hotline.cli", "setup"], cwd=ROOT, env=s.env,
                         capture_output=True, text=True, timeout=300)
    assert res.returncode != 0
    said = "".join((res.stdout + res.stderr).split())      # the console wraps long lines, even in a path
    assert f"{plan}:[hotline-hook-hangpu]isnohookofthegenerateddialplan" in said, res.stderr
    assert generated.read_text().endswith("; untouched\n")
    plan.write_text(plan.read_text().replace("hook-hangpu", "hook-hangup"))
    before = {f: f.read_text() for f in (pjsip, plan, mods)}

    # the normal path: setup rewrites every generated file, then Asterisk restarts on them
    res = subprocess.run([sys.executable, "-m", "hotline.cli", "setup"], cwd=ROOT, env=s.env,
                         capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stdout[-2000:] + res.stderr[-2000:]
    assert {f: f.read_text() for f in before} == before, "setup touched the admin's files"
    terminate(s.controller)
    s.asterisk.stop()
    s.asterisk.start()
    s.start_controller()

    assert "app_milliwatt.so" in s.asterisk.rx("module show like app_milliwatt")
    assert "app_morsecode.so" in s.asterisk.rx("module show like app_morsecode")

    # the endpoint: registers with its password, a wrong one is refused
    assert register(s, password) == 200
    assert register(s, "not-" + password) == 401
    assert PHONE in s.asterisk.rx(f"pjsip show contacts like {PHONE}")

    # the hooks: run on a real call, which goes on into the IVR and ends with its record as usual
    s.call("083312348", dtmf="2:1", hangup_after=6, caller="13911117001").result(60)
    wait_for(lambda: astdb(s, "inbound") == "083312348-leshan", 15, "inbound hook")
    wait_for(lambda: astdb(s, "hangup") == "leshan-lang=zh", 15, "hangup hook")
    rec = s.wait_record(lambda r: r["caller_number"] == "13911117001" and r["status"] == "ended", 30)
    assert rec["city"] == "leshan" and rec["ivr_path"] == "lang=zh"
    assert astdb(s, "voicemail") == ""

    # nobody logged in anywhere: the voicemail hook runs, then the caller still reaches the mailbox
    s.call("083312348", dtmf="2:1,4:1", hangup_after=30, caller="13911117003").result(60)
    rec = s.wait_record(lambda r: r["caller_number"] == "13911117003" and r["status"] == "ended", 30)
    assert astdb(s, "voicemail") == "leshan"
    assert rec["outcome"] == "voicemail", rec


def test_a_missing_hook_is_no_step(own_stack):
    """Without the admin's contexts the hook points do nothing: the call takes its default path."""
    s = own_stack
    plan = custom(s, "extensions_custom.conf")
    plan.write_text(plan.read_text().split("\n[", 1)[0] + "\n")
    s.asterisk.rx("dialplan reload")
    s.asterisk.rx("database deltree hltest")
    assert "There is no existence" in s.asterisk.rx("dialplan show hotline-hook-inbound")
    s.call("083312348", dtmf="2:1", hangup_after=6, caller="13911117002").result(60)
    rec = s.wait_record(lambda r: r["caller_number"] == "13911117002" and r["status"] == "ended", 30)
    assert rec["city"] == "leshan" and rec["ivr_path"] == "lang=zh"
    assert astdb(s, "inbound") == ""


def test_a_module_the_rootfs_lacks_is_refused_before_anything_is_written(own_stack):
    s = own_stack
    cfg = load_config(ROOT, {**s.overrides, "asterisk": {**s.overrides["asterisk"], "extra_modules": ["res_nosuch.so"]}})
    modules = s.asterisk.paths.host(s.asterisk.paths.etc / "modules.conf")
    before = modules.read_text()
    with pytest.raises(AsteriskRuntimeError, match=r"asterisk.extra_modules: res_nosuch.so not in /usr/lib/"):
        AsteriskInstance(cfg).install(s.secrets, log=lambda *a: None)
    assert modules.read_text() == before
