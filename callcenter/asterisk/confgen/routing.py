"""The dialplan's routing tables: one context per workflow variant, opening hours, the green-channel
registry, and what happens when an agent answers (the interpreter conference)."""
from __future__ import annotations

from core.config import HotlineConfig
from core.numbering import caller_forms
from core.schedule import DAYS
from core import workflow


def workflow_contexts(cfg: HotlineConfig) -> str:
    """One context per (workflow, city, skill): its queue steps in order, then voicemail."""
    out = []
    for wf, city, skill, lang in workflow.plan_variants(cfg):
        out.append(f"\n[{workflow.variant_context(wf, city, skill)}]\n")
        steps = workflow.plan_for(wf, city, skill, lang, cfg)
        for i, st in enumerate(steps):
            head = "exten => s,1," if i == 0 else " same => n,"
            out.append(f"{head}Gosub(hotline-step,s,1({st.queue},{st.wait},{st.target},{int(st.interpreter)}))\n")
        out.append((" same => n," if steps else "exten => s,1,") + "Goto(hotline-voicemail,s,1)\n")
    return "".join(out)


def hours_contexts(cfg: HotlineConfig) -> str:
    """Opening hours per city as GotoIfTime rules; holidays and make-up days by local date."""
    tz = cfg.routing.timezone
    out = ["\n[hotline-closed-days]\n"]
    any_sched = next(iter(cfg.schedules.values()))
    # national days are every city's; what a city has beyond them are its local holidays
    national = frozenset.intersection(*(s.closed for s in cfg.schedules.values()))
    out += [f"exten => {d:%Y%m%d},1,Return()\n" for d in sorted(national)]
    out.append("\n[hotline-make-up-days]\n")
    out += [f"exten => {d:%Y%m%d},1,Return()\n" for d in sorted(any_sched.workdays)]
    for c in cfg.cities:
        local = cfg.schedules[c.id].closed - national
        if local and not cfg.schedules[c.id].always_open:
            out.append(f"\n[hotline-closed-days-{c.id}]\n; {c.names.zh}: local holidays (config/local_holidays.yaml)\n")
            out += [f"exten => {d:%Y%m%d},1,Return()\n" for d in sorted(local)]
    for c in cfg.cities:
        sch = cfg.schedules[c.id]
        out.append(f"\n[hotline-hours-{c.id}]\n")
        if sch.always_open:
            out.append("exten => s,1,Return(1)  ; open 24/7\n")
            continue
        out.append(f"exten => s,1,Set(LOCAL(d)=${{STRFTIME(${{EPOCH}},{tz},%Y%m%d)}})\n")
        out.append(" same => n,GotoIf(${DIALPLAN_EXISTS(hotline-closed-days,${LOCAL(d)},1)}?closed)\n")
        if sch.closed - national:
            out.append(f" same => n,GotoIf(${{DIALPLAN_EXISTS(hotline-closed-days-{c.id},${{LOCAL(d)}},1)}}?closed)\n")
        out.append(" same => n,GotoIf(${DIALPLAN_EXISTS(hotline-make-up-days,${LOCAL(d)},1)}?workday)\n")
        for day in range(7):
            for span in sch.weekly.get(day, ()):
                out.append(f" same => n,GotoIfTime({span.start:%H:%M}-{span.end:%H:%M},{DAYS[day]},*,*,{tz}?open)\n")
        out.append(" same => n(closed),Return(0)\n")
        out.append(" same => n(workday),NoOp(make-up working day: Monday's hours)\n")
        for span in sch.weekly.get(0, ()):
            out.append(f" same => n,GotoIfTime({span.start:%H:%M}-{span.end:%H:%M},*,*,*,{tz}?open)\n")
        out.append(" same => n,Return(0)\n")
        out.append(" same => n(open),Return(1)\n")
    return "".join(out)


def green_registry_context(cfg: HotlineConfig) -> str:
    """Looked up with the filtered caller ID (HL_CID): each registered caller under every form their
    caller ID may arrive in (13800000000, +8613800000000, 008613800000000, ...), one caller each."""
    out = ["\n[hotline-green-registry]\n; callers known to qualify (config/green_registry.yaml)\n"]
    out += [f"exten => {form},1,Return({cat})\n" for num, cat in sorted(cfg.green_registry.items())
            for form in caller_forms(num)]
    return "".join(out)


def answer_contexts() -> str:
    """On the agent's channel when the queue connects: who answered, and the interpreter three-way."""
    return """

[hotline-agent-answer]
; runs on the agent's channel when connected; MASTER_CHANNEL is the caller's channel
exten => s,1,Set(MASTER_CHANNEL(HOTLINE_ANSWERED_AT)=${EPOCH})
 ; the agent's phone transfers (REFER, or DTMF #1 / *2) land in the desk's transfer targets
 same => n,Set(TRANSFER_CONTEXT=hotline-transfer)
 same => n,Set(MASTER_CHANNEL(HOTLINE_AGENT)=${CHANNEL(endpoint)})
 same => n,Set(MASTER_CHANNEL(HOTLINE_AGENT_CHAN)=${CHANNEL})
 ; no event here: app_queue's AgentConnect says who answered
 same => n,GotoIf($["${HOTLINE_INTERPRETER}" != "1"]?done)
 same => n,GotoIf(${DIALPLAN_EXISTS(hotline-interp-dial,${HOTLINE_LANG},1)}?:done)
 ; ring the language's interpreters; the one who answers joins the caller's bridge (three-way)
 same => n,Originate(Local/${HOTLINE_LANG}@hotline-interp-dial,exten,hotline-interp-join,s,1,60,av(JOIN=${HOTLINE_CALLER_CHAN}))
 same => n,UserEvent(HotlineInterpreter,Lang: ${HOTLINE_LANG},Status: ringing)
 same => n(done),Return()

[hotline-interp-join]
; the interpreter answered: join the bridge the caller and agent are in (it becomes a conference)
exten => s,1,Set(TRIES=0)
 ; the caller's hangup handler releases the interpreter and the agent (a conference outlives its
 ; first party otherwise)
 same => n,Set(SHARED(HOTLINE_INTERP_CHAN,${JOIN})=${CHANNEL})
 same => n,UserEvent(HotlineInterpreter,Status: answered)
 same => n(again),BridgeAdd(${JOIN})
 same => n,GotoIf($["${BRIDGERESULT}" = "SUCCESS"]?:retry)
 same => n,UserEvent(HotlineInterpreter,Status: left)
 same => n,Hangup()
 same => n(retry),Set(TRIES=$[${TRIES} + 1])
 same => n,GotoIf($[${TRIES} > 10]?gone)
 same => n,Wait(0.5)
 same => n,Goto(again)
 same => n(gone),UserEvent(HotlineInterpreter,Status: failed,Reason: ${BRIDGERESULT})
 same => n,Hangup()
"""


def interpreter_dial_context(cfg: HotlineConfig) -> str:
    """Per language: ring every interpreter at once (SIP accounts and phone numbers via the trunk)."""
    out = ["\n[hotline-interp-dial]\n"]
    for lang in [l.code for l in cfg.ivr.languages]:
        targets = [f"PJSIP/{i.number}@{cfg.system.trunk.name}" if i.number else f"PJSIP/{i.id}"
                   for i in cfg.interpreters if lang in i.languages]
        if targets:
            out.append(f"exten => {lang},1,Dial({'&'.join(targets)},45)\n same => n,Hangup()\n")
    return "".join(out)


def emergency_contexts(cfg: HotlineConfig) -> str:
    """A caller in danger: the desk originates a leg to 110/120 through the carrier trunk; when it
    answers it joins the caller–agent bridge (a conference: the agent stays on the line). The events
    carry the call's id (HL_CALL), since the originated leg has a linkedid of its own."""
    out = ["\n[hotline-emergency-dial]\n; configured emergency numbers only (routing.yaml emergency_numbers)\n"]
    for number, label in cfg.routing.emergency_numbers.items():
        out.append(f"exten => {number},1,UserEvent(HotlineEmergency,Call: ${{HL_CALL}},Number: ${{EXTEN}},Status: ringing)"
                   f"  ; {label}\n same => n,Dial(PJSIP/{number}@{cfg.system.trunk.name},60)\n"
                   " same => n,UserEvent(HotlineEmergency,Call: ${HL_CALL},Number: ${EXTEN},Status: failed,"
                   "Reason: ${DIALSTATUS})\n same => n,Hangup()\n")
    out.append("""
[hotline-emergency-join]
; the emergency service answered: join the bridge the caller and agent are in (three-way)
exten => s,1,Set(TRIES=0)
 same => n,UserEvent(HotlineEmergency,Call: ${HL_CALL},Number: ${HL_NUMBER},Status: answered)
 same => n(again),BridgeAdd(${JOIN})
 same => n,GotoIf($["${BRIDGERESULT}" = "SUCCESS"]?:retry)
 same => n,UserEvent(HotlineEmergency,Call: ${HL_CALL},Number: ${HL_NUMBER},Status: left)
 same => n,Hangup()
 same => n(retry),Set(TRIES=$[${TRIES} + 1])
 same => n,GotoIf($[${TRIES} > 10]?gone)
 same => n,Wait(0.5)
 same => n,Goto(again)
 same => n(gone),UserEvent(HotlineEmergency,Call: ${HL_CALL},Number: ${HL_NUMBER},Status: failed,Reason: ${BRIDGERESULT})
 same => n,Hangup()
""")
    return "".join(out)
