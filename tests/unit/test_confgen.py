"""Generated Asterisk config: every path ends, secrets are used, AMI is loopback-only."""
from pathlib import Path

from callcenter.asterisk.confgen import MODULES, generate
from store.secrets import Secrets
from core.paths import InstancePaths
from core.config import load_config

CFG = load_config()
SECRETS = Secrets("hotline", "s3cr3t-ami", {a: f"pw-{a}" for a in CFG.sip_accounts()})
FILES = generate(CFG, SECRETS, InstancePaths(Path("/rootfs"), "main"), "/usr/lib/x/asterisk/modules")


def test_every_city_did_in_dialplan():
    plan = FILES["extensions.conf"]
    for c in CFG.cities:
        assert f"exten => {c.did},1,Gosub(hotline-start" in plan
    assert "[hotline-ivr-city-028]" in plan and "[hotline-ivr-city-0833]" not in plan


def test_every_menu_has_a_default_and_queues_end_in_voicemail():
    plan = FILES["extensions.conf"]
    for menu in ("language", "service", "city-028"):
        assert f"[hotline-ivr-{menu}-opt]" in plan
        section = plan.split(f"[hotline-ivr-{menu}-opt]")[1].split("\n[")[0]
        assert "exten => default,1" in section
    for ctx in [l for l in plan.splitlines() if l.startswith("[hotline-wf-")]:
        body = plan.split(ctx)[1].split("\n[")[0]
        assert body.rstrip().endswith("Goto(hotline-voicemail,s,1)"), ctx
    std = plan.split("[hotline-wf-standard-leshan]")[1].split("\n[")[0]
    assert std.index("(leshan,60,city,0)") < std.index("(leshan-near,45,neighbours,0)") < std.index("(province,90,province,0)")


def test_unknown_numbers_hang_up_with_cause_1():
    unknown = FILES["extensions.conf"].split("[hotline-unknown]")[1].split("\n[")[0]
    assert "Progress()" in unknown and "noanswer" in unknown and "Hangup(1)" in unknown


def test_secrets_and_least_privilege():
    assert "secret = s3cr3t-ami" in FILES["manager.conf"]
    assert "bindaddr = 127.0.0.1" in FILES["manager.conf"]
    assert "write = call,agent,originate,reporting" in FILES["manager.conf"]   # no UserEvent action: no user write
    assert "command" not in FILES["manager.conf"].split("write =")[1].split("\n")[0]
    for a in CFG.agents:
        assert f"password = pw-{a.id}" in FILES["pjsip.conf"]
    assert "endpoint_identifier_order = username,ip" in FILES["pjsip.conf"]


def test_modules_are_trimmed():
    mods = FILES["modules.conf"]
    assert "autoload = no" in mods and len(MODULES) == len(set(MODULES))
    assert "load = app_queue.so" in mods and "chan_iax2" not in mods


def test_failed_sip_logins_reach_the_controller_and_blocks_reach_asterisk():
    """Finding 13: security events are read (the frequent harmless ones filtered out); PJSIP ACLs come
    from the blocklist table, read on each request without a long transaction, with no new write class."""
    mgr = FILES["manager.conf"]
    assert "read = call,agent,user,security\n" in mgr
    assert "write = call,agent,originate,reporting\n" in mgr
    disabled = next(line for line in mgr.splitlines() if line.startswith("disabledevents = ")).split(" = ")[1]
    assert {"ChallengeSent", "SuccessfulAuth"} <= set(disabled.split(","))
    for m in ("res_pjsip_acl.so", "res_sorcery_realtime.so", "res_config_sqlite3.so"):
        assert f"load = {m}\n" in FILES["modules.conf"]
    assert "[acl]\nacl = realtime,ps_acls\n" in FILES["sorcery.conf"]
    assert "ps_acls => sqlite3,hotline,ps_acls\n" in FILES["extconfig.conf"]
    db = FILES["res_config_sqlite3.conf"]
    assert "dbfile = /srv/hotline/main/lib/sip-blocklist.sqlite3\n" in db and "batch = 0\n" in db
    assert "type = acl" not in FILES["pjsip.conf"]      # the realtime mapping replaces pjsip.conf's ACLs


def test_queue_per_city_and_pool():
    q = FILES["queues.conf"]
    for qid in CFG.queue_ids:
        assert f"\n[{qid}]\n" in q
    assert "persistentmembers = yes" in q


def test_trunk_and_partners_are_identified_by_address_only():
    # a request from anywhere saying From: carrier must not be taken for the trunk (docs/security.md §1)
    pjsip = FILES["pjsip.conf"]
    trunk = pjsip.split(f"[{CFG.system.trunk.name}]\ntype = endpoint")[1].split("\n[")[0]
    assert "identify_by = ip" in trunk
    for section in pjsip.split("\n[partner-")[1:]:
        if "type = endpoint" in section.split("\n[")[0]:
            assert "identify_by = ip" in section.split("\n[")[0]


def test_numbers_dialled_back_are_digits_only():
    plan = FILES["extensions.conf"]
    assert "/number)=${FILTER(0123456789+,${CALLERID(num)})}" in plan
    assert "/number)=${FILTER(0123456789+,${HLCB_NUMBER})}" in plan


def test_dialplan_names_come_from_the_contract():
    """Every UserEvent and HOTLINE_* variable in the generated dialplan is named in core/contract.py,
    and a name outside it is refused at generation time."""
    import pytest

    from callcenter.asterisk.confgen import check_contract
    from core.contract import Ev
    plan = FILES["extensions.conf"]
    for ev in (Ev.CALL, Ev.QUEUE, Ev.CALL_END):
        assert f"UserEvent({ev.value}," in plan
    # one event per real change: no event per IVR step, routing decision or answer (their facts ride on
    # HotlineQueue and HotlineCallEnd; AgentConnect says who answered)
    for gone in ("HotlineIVR,", "HotlineRoute", "HotlineWaitAnnounced", "HotlineAnswered"):
        assert gone not in plan
    check_contract("exten => s,1,UserEvent(HotlineCall,DID: 1)\n same => n,Set(__HOTLINE_CITY=leshan)\n")
    with pytest.raises(ValueError, match="HotlineTypo"):
        check_contract("exten => s,1,UserEvent(HotlineTypo,DID: 1)\n")
    with pytest.raises(ValueError, match="HOTLINE_CTIY"):
        check_contract("exten => s,1,Set(__HOTLINE_CTIY=leshan)\n")


def test_files_and_dialplan_sections_keep_their_order():
    """The generated files are read by Asterisk admins and diffed across releases: refactoring the
    generator must not reorder them. Per-city/per-partner contexts collapse to one name with `*`."""
    import re

    assert list(FILES) == [
        "asterisk.conf", "modules.conf", "logger.conf", "rtp.conf", "pjsip.conf", "manager.conf", "queues.conf",
        "extensions.conf", "voicemail.conf", "musiconhold.conf", "cdr.conf", "cel.conf", "acl.conf", "udptl.conf",
        "pjproject.conf", "ccss.conf", "indications.conf", "features.conf", "confbridge.conf",
        "sorcery.conf", "extconfig.conf", "res_config_sqlite3.conf", "http.conf"]
    sections = []
    for name in re.findall(r"^\[([^\]]+)\]$", FILES["extensions.conf"], re.M):
        name = re.sub(r"^hotline-(ivr-city|wf|hours|partner-headers|partner|closed-days)-.*", r"hotline-\1-*", name)
        if not sections or sections[-1] != name:
            sections.append(name)
    assert sections == [
        "globals", "hotline-trunk", "hotline-start", "hotline-ivr-step", "hotline-hangup",
        "hotline-ivr-language", "hotline-ivr-language-opt",
        "hotline-ivr-language-ii", "hotline-ivr-language-ii-opt",   # Liangshan's number also offers Yi
        "hotline-after-language", "hotline-ivr-city-*",
        "hotline-ivr-service", "hotline-ivr-service-opt", "hotline-ivr-green", "hotline-ivr-green-opt",
        "hotline-queue", "hotline-step", "hotline-ahead", "hotline-wait-langs",
        "hotline-queue-keys", "hotline-cb-hold", "hotline-cb-dial", "hotline-cb-answered", "hotline-cb-plan",
        "hotline-wf-*", "hotline-closed-days", "hotline-make-up-days",
        "hotline-closed-days-*", "hotline-hours-*", "hotline-green-registry",
        "hotline-agent-answer", "hotline-interp-join", "hotline-interp-dial",
        "hotline-emergency-dial", "hotline-emergency-join", "hotline-voicemail", "hotline-unknown",
        "hotline-transfer", "hotline-partner-*", "hotline-partner-headers-*", "hotline-transfer",
        "hotline-survey", "hotline-survey-q", "hotline-survey-end", "hotline-hold", "hotline-held",
        "hotline-refuse", "hotline-agents",
        # recording prompts by phone (issue 20), after everything callers meet
        "hotline-prompt-recorders", "hotline-prompt-langs", "hotline-prompt-ids", "hotline-prompt-record",
        "hotline-prompt-pin", "hotline-prompt-say", "hotline-prompt-menu"]


def test_dialled_number_is_filtered_to_digits_before_use():
    """Security review 16 §9: the carrier's Request-URI user part reaches EXTEN as sent. Every pattern
    in the trunk filters it to digits before it is used (Gosub arguments, variables, UserEvents), and a
    number that changes under the filter is an unknown number: '999,chengdu,028' must not become
    Gosub arguments that set the city."""
    trunk = FILES["extensions.conf"].split("[hotline-trunk]")[1].split("\n[")[0]
    exts: dict[str, list[str]] = {}
    cur = None
    for line in trunk.splitlines():
        if line.startswith("exten => "):
            cur = line.split("=>", 1)[1].split(",", 1)[0].strip()
            exts[cur] = [line.split(",", 2)[2]]
        elif line.startswith(" same => ") and cur:
            exts[cur].append(line.split(",", 1)[1])
    patterns = [e for e in exts if e.startswith("_")]
    assert set(patterns) >= {"_X.", "_+X.", "_+86X.", "_0086X.", "_86X."}
    for ext in patterns:
        steps = exts[ext]
        # the first step filters, the second sends a changed number to the unknown path
        assert steps[0].startswith("Set(HL_DIALED=") and "FILTER(0123456789," in steps[0], (ext, steps)
        assert steps[1] == "GotoIf($[${LEN(${HL_DIALED})} != ${LEN(${EXTEN})}]?s,1)", (ext, steps)
        # the raw EXTEN is used nowhere else
        assert not any("${EXTEN" in s for s in steps[2:]), (ext, steps)
    assert "${EXTEN}" not in trunk.replace("${FILTER(0123456789,${EXTEN", "").replace("${LEN(${EXTEN})}", "")
    # the unknown path reports the filtered digits (empty when the carrier sent no number)
    assert exts["s"][0] == "Gosub(hotline-start,s,1(${HL_DIALED},,))"
    assert exts["s"][1] == "Goto(hotline-unknown,s,1)"


def test_queue_callbacks_dial_only_numbers_of_the_numbering_plan():
    """Security review 16 §4a: the queue callback ("press 5") is dialled by Asterisk itself, to the
    caller ID, which is the caller's to set: the placeholder checks the number against the numbering
    plan (the same plan as core/numbering.py) before it joins the queue, and refuses it otherwise."""
    from core.numbering import dialplan_patterns, plan_area_codes
    plan = FILES["extensions.conf"]
    ctx = plan.split("[hotline-cb-plan]")[1].split("\n[")[0]
    exts = [l.split("=>", 1)[1].split(",", 1)[0].strip() for l in ctx.splitlines() if l.startswith("exten => ")]
    assert exts == dialplan_patterns(CFG.system.numbering_plan, plan_area_codes(CFG))
    assert "_1[3-9]XXXXXXXXX" in exts and not any(e.startswith(("_+882", "_00", "_X")) for e in exts if "86" not in e)
    hold = plan.split("[hotline-cb-hold]")[1].split("\n[")[0]
    check = hold.index("GotoIf(${DIALPLAN_EXISTS(hotline-cb-plan,${DB(hlcb/${ID}/number)},1)}?:refused)")
    assert check < hold.index("Queue(${Q}")
    refused = hold.split("(refused)")[1]
    assert "Result: failed" in refused and "Status: REFUSED" in refused and "DBdeltree(hlcb/${ID})" in refused


def test_caller_id_is_filtered_before_the_green_registry_and_the_log():
    """Issue 16: the caller ID is the caller's or carrier's to set. It is filtered once, in hotline-start
    (HL_CID: digits with one leading +, else empty), and only HL_CID reaches the green-registry lookup
    and the log line; the raw CALLERID(num) is used by nothing but that filter (and by the queue
    callback, which filters it itself and checks it against the numbering plan)."""
    plan = FILES["extensions.conf"]
    start = plan.split("[hotline-start]")[1].split("\n[")[0]
    assert "Set(HL_CID=${FILTER(+,${CALLERID(num):0:1})}${FILTER(0123456789,${CALLERID(num)})})" in start
    assert "ExecIf($[${LEN(${HL_CID})} != ${LEN(${CALLERID(num)})}]?Set(HL_CID=))" in start
    rest = plan.replace(start, "").replace("Set(DB(hlcb/${UNIQUEID}/number)=${FILTER(0123456789+,${CALLERID(num)})})", "")
    assert "${CALLERID(num)" not in rest
    queue = plan.split("[hotline-queue]")[1].split("\n[")[0]
    assert "DIALPLAN_EXISTS(hotline-green-registry,${HL_CID},1)" in queue
    assert "Gosub(hotline-green-registry,${HL_CID},1)" in queue
    assert "from '${HL_CID}'" in plan.split("[hotline-unknown]")[1].split("\n[")[0]


def test_green_registry_matches_every_form_of_a_registered_number():
    """Issue 16, finding 4: an entry written 13700000080 is the caller whose ID arrives as +8613700000080,
    008613700000080 or 8613700000080; the registry itself is keyed by E.164."""
    assert CFG.green_registry["+8613700000080"] == "elderly"
    registry = FILES["extensions.conf"].split("[hotline-green-registry]")[1].split("\n[")[0]
    for form in ("13700000080", "+8613700000080", "008613700000080", "8613700000080"):
        assert f"exten => {form},1,Return(elderly)" in registry, form
    assert "exten => 13700000081,1,Return(disabled)" in registry


def test_every_generated_file_reads_the_admins_file_last():
    """Issue 17 item 5: each file ends with a #tryinclude of the admin's custom/<name>_custom.conf, which
    setup creates once (custom_files) and never rewrites; not asterisk.conf, which sets the directory
    relative includes are read from."""
    from callcenter.asterisk.confgen import custom_files
    for name, text in FILES.items():
        last = text.rstrip("\n").splitlines()[-1]
        if name == "asterisk.conf":
            assert "#tryinclude" not in text
        else:
            assert last == f"#tryinclude custom/{name.removesuffix('.conf')}_custom.conf", name
            assert text.count("#tryinclude") == 1, name
    made = custom_files(FILES)
    assert len(made) == len(FILES) - 1
    text, mode = made["custom/pjsip_custom.conf"]
    assert mode == 0o600 and made["custom/manager_custom.conf"][1] == 0o600   # passwords live there too
    assert made["custom/extensions_custom.conf"][1] == 0o644
    assert all(line.startswith(";") for line in text.splitlines())           # nothing but a header


def test_an_admins_file_that_would_break_the_generated_one_is_named():
    from callcenter.asterisk.confgen import check_custom
    assert check_custom("; header\n\n[lobby](!)\ntype = endpoint ; comment\n#include more.conf\n") == []
    stray = check_custom("; header\nallow = g729\n[lobby]\ntype = aor\n")
    assert stray == ["line 2: 'allow = g729' comes before any [section] and would "
                     "change the generated file's last section: start the file with your own [section]"]
    plan = ("[hotline-hook-inbound]\nexten => s,1,NoOp()\n same => n,Return()\n"
            "[hotline-hook-hangup]\nexten => s,1,NoOp() ; Return() only in a comment\n"
            "[hotline-hook-inbuond]\nexten => s,1,Return()\n[my-menu]\nexten => 1,1,Hangup()\n")
    problems = check_custom(plan)
    assert len(problems) == 2
    assert problems[0] == "[hotline-hook-hangup] has no Return(): the call would end in the hook"
    assert "[hotline-hook-inbuond] is no hook" in problems[1] and "hotline-hook-inbound" in problems[1]


def test_admin_hooks_are_called_only_if_defined():
    """The documented hook points (core/contract.Hook) are GosubIf(DIALPLAN_EXISTS): without the admin's
    context nothing runs, and the default path goes on after the hook's Return()."""
    import re

    import pytest

    from callcenter.asterisk.confgen import check_contract
    from core.contract import Hook
    plan = FILES["extensions.conf"]
    for h in Hook:
        assert plan.count(h.value) == 2, h                       # the existence check and the Gosub
        assert f"GosubIf($[${{DIALPLAN_EXISTS({h},s,1)}}]?{h},s,1)" in plan
        assert f"[{h}]" not in plan                              # the context is the admin's, never ours

    def context(name: str) -> str:
        return re.search(rf"^\[{name}\]\n(.*?)(?=^\[)", plan, re.M | re.S).group(1)
    start, hangup, vm = context("hotline-start"), context("hotline-hangup"), context("hotline-voicemail")
    assert start.index("UserEvent(HotlineCall") < start.index(Hook.INBOUND) < start.index("Return()")
    assert hangup.index("CDR(userfield)") < hangup.index(Hook.HANGUP)   # the call's facts are kept first
    assert vm.index("UserEvent(HotlineVoicemail") < vm.index(Hook.VOICEMAIL) < vm.index("VoiceMail(")
    with pytest.raises(ValueError, match="hotline-hook-typo"):
        check_contract("exten => s,1,Gosub(hotline-hook-typo,s,1)\n")


def test_extra_modules_are_loaded_after_ours():
    cfg = load_config(overrides={"asterisk": {"extra_modules": ["res_snmp.so", "app_queue.so"]}})
    conf = generate(cfg, SECRETS, InstancePaths(Path("/rootfs"), "main"), "/m")["modules.conf"]
    loads = [line.split("= ")[1] for line in conf.splitlines() if line.startswith("load = ")]
    assert loads == MODULES + ["res_snmp.so"]     # one already ours is not loaded twice
    assert "res_snmp" not in FILES["modules.conf"]
    assert conf.endswith("#tryinclude custom/modules_custom.conf\n")     # the admin's noload/load lines
