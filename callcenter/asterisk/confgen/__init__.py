"""Generate Asterisk's configuration files from config/ and ivr_flows/.

Pure: ``generate(cfg, secrets, paths)`` returns {file name: text}. The IVR, queues, overflow and
voicemail all live in the generated dialplan, so a live call never depends on the controller:
the controller observes (AMI events) and manages agents, it does not steer calls.
"""
from __future__ import annotations

import re

from core.config import HotlineConfig
from core.contract import TRUNK_CONTEXT, Ev, Var
from core.paths import InstancePaths
from core.routing import cities_by_area_code, city_choices
from core.schedule import DAYS
from core import workflow
from core.transfers import transfer_extensions
from ivr_flows.prompts import MAX_AHEAD, MAX_MINUTES, announces_waits
from store.secrets import Secrets

from . import system
from .common import HEADER, REC_OPTIONS
from .manager import manager_conf
from .pjsip import pjsip_conf
from .queues import queues_conf
from .system import MODULES

__all__ = ["HEADER", "MODULES", "REC_OPTIONS", "check_contract", "extensions_conf", "generate"]


def generate(cfg: HotlineConfig, secrets: Secrets, paths: InstancePaths, moddir: str) -> dict[str, str]:
    files = _files(cfg, secrets, paths, moddir)
    check_contract(files["extensions.conf"])
    return files


def check_contract(plan: str) -> None:
    """The dialplan keeps the contract the tracker reads (core/contract.py): every UserEvent it emits
    and every HOTLINE_* variable it sets has a name there."""
    events = set(re.findall(r"UserEvent\((\w+)", plan)) - {e.value for e in Ev}
    variables = set(re.findall(r"Set\(_{0,2}(HOTLINE_\w+)=", plan)) - {v.value for v in Var}
    if events or variables:
        raise ValueError(f"the dialplan uses names outside core/contract.py: {sorted(events | variables)}")


def _files(cfg: HotlineConfig, secrets: Secrets, paths: InstancePaths, moddir: str) -> dict[str, str]:
    # this order is the order `hotline setup` writes them in (pinned by tests/unit/test_confgen.py)
    return {
        "asterisk.conf": system.asterisk_conf(paths, moddir),
        "modules.conf": system.modules_conf(),
        "logger.conf": system.logger_conf(),
        "rtp.conf": system.rtp_conf(cfg),
        "pjsip.conf": pjsip_conf(cfg, secrets),
        "manager.conf": manager_conf(cfg, secrets),
        "queues.conf": queues_conf(cfg),
        "extensions.conf": extensions_conf(cfg, paths),
        "voicemail.conf": system.voicemail_conf(cfg),
        "musiconhold.conf": system.musiconhold_conf(paths),
        "cdr.conf": system.CDR_CONF,
        **{name: HEADER for name in system.EMPTY_FILES},
        "indications.conf": system.INDICATIONS_CONF,
        "features.conf": system.FEATURES_CONF,
        "confbridge.conf": system.CONFBRIDGE_CONF,
    }


# ---------------------------------------------------------------- dialplan

def _menu(name: str, prompts: list[str], options: dict[str, list[str]], default_key: str,
          timeout: int, attempts: int, invalid_prompt: str) -> str:
    """A DTMF menu as two contexts: the asking loop and one extension per option.

    Garbage input (wrong digit, '*') plays ``invalid_prompt`` and asks again; no input and
    exhausted attempts take ``default_key`` — the caller always moves on.
    """
    ctx, opt = f"hotline-ivr-{name}", f"hotline-ivr-{name}-opt"
    prompt_arg = "&".join(prompts)
    out = [f"""
[{ctx}]
exten => s,1,Set(TRIES=0)
 same => n(ask),Set(TRIES=$[${{TRIES}} + 1])
 same => n,Read(CHOICE,{prompt_arg},1,,1,{timeout})
 same => n,GotoIf($["${{CHOICE}}" = ""]?noinput)
 same => n,GotoIf(${{DIALPLAN_EXISTS({opt},${{CHOICE}},1)}}?{opt},${{CHOICE}},1)
 same => n,UserEvent(HotlineIVRInvalid,Menu: {name},Input: ${{CHOICE}})
 same => n,Playback({invalid_prompt})
 same => n(noinput),GotoIf($[${{TRIES}} < {attempts}]?ask)
 same => n,Goto({opt},default,1)

[{opt}]
"""]
    for key, actions in options.items():
        out.append(f"exten => {key},1,NoOp({name} option {key})\n")
        out.extend(f" same => n,{a}\n" for a in actions)
    default_actions = options[default_key]
    out.append(f"exten => default,1,NoOp({name}: no valid input, default {default_key})\n")
    out.extend(f" same => n,{a.replace(',dtmf)', ',default)')}\n" for a in default_actions)
    return "".join(out)


def extensions_conf(cfg: HotlineConfig, paths: InstancePaths) -> str:
    ivr = cfg.ivr
    snd = "${HL_SOUNDS}"
    default_lang = ivr.default_language
    out = [HEADER, f"""[globals]
HL_SOUNDS={paths.sounds}
HL_DEFAULT_LANG={default_lang}
; handle time for wait estimates; the controller updates it from recent calls
HL_AHT={cfg.system.queues.announce.aht_seconds}

; ---------------------------------------------------------------- carrier trunk
[{TRUNK_CONTEXT}]
"""]
    groups = cities_by_area_code(cfg.cities)
    for area, group in groups.items():
        did = f"{area}12348"
        if len(group) == 1:
            c = group[0]
            out.append(f"exten => {did},1,Gosub(hotline-start,s,1({did},{c.id},{area}))  ; {c.names.zh}\n")
        else:
            out.append(f"exten => {did},1,Gosub(hotline-start,s,1({did},,{area}))  ; shared: "
                       + ", ".join(c.names.zh for c in group) + "\n")
        out.append(" same => n,Goto(hotline-ivr-language,s,1)\n")
    out.append("""; international forms of the same numbers: +86 833 12348 -> 0833 12348
exten => _+86X.,1,Goto(0${EXTEN:3},1)
exten => _0086X.,1,Goto(0${EXTEN:4},1)
exten => _86X.,1,Goto(0${EXTEN:2},1)
; anything else is not a 12348 number: apologise, log, hang up cleanly
exten => _X.,1,Gosub(hotline-start,s,1(${EXTEN},,))
 same => n,Goto(hotline-unknown,s,1)
exten => _+X.,1,Gosub(hotline-start,s,1(${EXTEN},,))
 same => n,Goto(hotline-unknown,s,1)
exten => s,1,Gosub(hotline-start,s,1(,,))
 same => n,Goto(hotline-unknown,s,1)
exten => i,1,Goto(hotline-unknown,s,1)

[hotline-start]
; ARG1 dialed number, ARG2 city (empty when the area code is shared), ARG3 area code
exten => s,1,Set(__HOTLINE_DID=${ARG1})
 same => n,Set(__HOTLINE_CITY=${ARG2})
 same => n,Set(__HOTLINE_AREA=${ARG3})
 same => n,Set(__HOTLINE_LANG=${HL_DEFAULT_LANG})
 same => n,Set(CHANNEL(language)=${HL_DEFAULT_LANG})
 same => n,Set(__HOTLINE_IVR_PATH=)
 same => n,Set(HOTLINE_START=${EPOCH})
 same => n,Set(__HOTLINE_CALLER_CHAN=${CHANNEL})
 same => n,Set(CHANNEL(hangup_handler_push)=hotline-hangup,s,1)
 same => n,UserEvent(HotlineCall,DID: ${ARG1},City: ${ARG2},Area: ${ARG3})
 same => n,Return()

[hotline-ivr-step]
; ARG1 step, ARG2 value, ARG3 how (dtmf|default): appends to the IVR path kept on the channel
exten => s,1,Set(STEP=${ARG1}=${ARG2})
 same => n,GotoIf($["${ARG3}" != "default"]?join)
 same => n,Set(STEP=${STEP}~default)
 same => n(join),GotoIf($["${HOTLINE_IVR_PATH}" = ""]?first)
 same => n,Set(__HOTLINE_IVR_PATH=${HOTLINE_IVR_PATH}/${STEP})
 same => n,Goto(emit)
 same => n(first),Set(__HOTLINE_IVR_PATH=${STEP})
 same => n(emit),UserEvent(HotlineIVR,Step: ${ARG1},Value: ${ARG2},How: ${ARG3},Path: ${HOTLINE_IVR_PATH})
 same => n,Return()

[hotline-hangup]
; hangup handler on the caller's channel: the last word on the call, whatever context it was in
exten => s,1,GotoIf($["${SHARED(HOTLINE_INTERP_CHAN)}" = ""]?end)
 same => n,SoftHangup(${SHARED(HOTLINE_INTERP_CHAN)})
 same => n,ExecIf($["${HOTLINE_AGENT_CHAN}" != ""]?SoftHangup(${HOTLINE_AGENT_CHAN}))
 same => n(end),UserEvent(HotlineCallEnd,City: ${HOTLINE_CITY},Lang: ${HOTLINE_LANG},Path: ${HOTLINE_IVR_PATH},Queue: ${HOTLINE_QUEUE},Agent: ${HOTLINE_AGENT},Cause: ${HANGUPCAUSE},Voicemail: ${VM_MESSAGEFILE})
 ; the same facts in Asterisk's own CDR (log/cdr-csv/Master.csv): a call that began and ended while
 ; the controller was down is rebuilt from it (callcenter/cdr.py)
 same => n,Set(CDR(userfield)=hl1|did=${HOTLINE_DID}|city=${HOTLINE_CITY}|area=${HOTLINE_AREA}|lang=${HOTLINE_LANG}|path=${HOTLINE_IVR_PATH}|svc=${HOTLINE_SERVICE}|queue=${HOTLINE_QUEUE}|overflow=${HOTLINE_OVERFLOW}|green=${HOTLINE_GREEN}|open=${HOTLINE_OPEN}|agent=${HOTLINE_AGENT}|start=${HOTLINE_START}|queued=${HOTLINE_QUEUED_AT}|answered=${HOTLINE_ANSWERED_AT}|rec=${HOTLINE_REC}|vm=${VM_MESSAGEFILE}|cause=${HANGUPCAUSE}|end=${EPOCH})
 same => n,Return()
"""
    )
    # language menu: the greeting and each language's offer, in that language
    lang_options = {}
    for lang in ivr.languages:
        lang_options[lang.digit] = [
            f"Set(__HOTLINE_LANG={lang.code})",
            f"Set(CHANNEL(language)={lang.code})",
            f"Gosub(hotline-ivr-step,s,1(lang,{lang.code},dtmf))",
            "Goto(hotline-after-language,s,1)",
        ]
    first = [f"{snd}/{default_lang}/greeting"] + [f"{snd}/{l.code}/lang_offer" for l in ivr.languages]
    default_digit = ivr.language(default_lang).digit
    out.append(_menu("language", first, lang_options, default_digit,
                     ivr.menus.language.timeout_seconds, ivr.menus.language.attempts,
                     f"{snd}/{default_lang}/invalid"))
    out.append("""
[hotline-after-language]
exten => s,1,GotoIf($["${HOTLINE_CITY}" != ""]?hotline-ivr-service,s,1)
 same => n,GotoIf(${DIALPLAN_EXISTS(hotline-ivr-city-${HOTLINE_AREA},s,1)}?hotline-ivr-city-${HOTLINE_AREA},s,1)
 same => n,Goto(hotline-unknown,s,1)
""")
    for area, group in groups.items():
        if len(group) < 2:
            continue
        opts = {}
        default_digit = ""
        for digit, city_id in city_choices(group):
            opts[digit] = [f"Set(__HOTLINE_CITY={city_id})",
                           f"Gosub(hotline-ivr-step,s,1(city,{city_id},dtmf))",
                           "Goto(hotline-ivr-service,s,1)"]
            if cfg.city(city_id).default:
                default_digit = digit
        out.append(_menu(f"city-{area}", [f"{snd}/${{HOTLINE_LANG}}/city_intro", f"{snd}/${{HOTLINE_LANG}}/city_{area}"],
                         opts, default_digit, ivr.menus.city.timeout_seconds, ivr.menus.city.attempts,
                         f"{snd}/${{HOTLINE_LANG}}/invalid"))
    svc = ivr.menus.service
    svc_opts = {}
    default_digit = ""
    for o in svc.options:
        svc_opts[o.digit] = [f"Set(__HOTLINE_SERVICE={o.service})",
                             f"Gosub(hotline-ivr-step,s,1(svc,{o.service},dtmf))",
                             "Goto(hotline-queue,s,1)"]
        if o.service == svc.default:
            default_digit = o.digit
    green = cfg.routing.green_channel
    svc_opts[green.digit] = ["Gosub(hotline-ivr-step,s,1(svc,green,dtmf))", "Goto(hotline-ivr-green,s,1)"]
    out.append(_menu("service", [f"{snd}/${{HOTLINE_LANG}}/service_menu"], svc_opts, default_digit,
                     svc.timeout_seconds, svc.attempts, f"{snd}/${{HOTLINE_LANG}}/invalid"))
    # green channel: the caller says which group; no input still gets priority ("unspecified")
    green_opts = {c.digit: [f"Set(__HOTLINE_GREEN={c.id})", f"Gosub(hotline-ivr-step,s,1(green,{c.id},dtmf))",
                            f"Set(__HOTLINE_SERVICE={svc.default})", "Goto(hotline-queue,s,1)"]
                  for c in green.categories}
    green_opts["unspecified"] = ["Set(__HOTLINE_GREEN=unspecified)",
                                 "Gosub(hotline-ivr-step,s,1(green,unspecified,dtmf))",
                                 f"Set(__HOTLINE_SERVICE={svc.default})", "Goto(hotline-queue,s,1)"]
    out.append(_menu("green", [f"{snd}/${{HOTLINE_LANG}}/green_menu"], green_opts, "unspecified",
                     svc.timeout_seconds, svc.attempts, f"{snd}/${{HOTLINE_LANG}}/invalid"))
    unknown_prompts = "&".join(f"{snd}/{l.code}/unknown_number" for l in ivr.languages)
    out.append(f"""
; ---------------------------------------------------------------- queues, overflow, voicemail
[hotline-queue]
exten => s,1,Set(__HOTLINE_REC=${{STRFTIME(${{EPOCH}},,%Y%m%d)}}/${{UNIQUEID}}.wav)
 ; record only while the caller is bridged to an agent (the prompt below announces it): the mix,
 ; and each speaker on its own track for transcription (r = what the caller says, t = what they hear)
 same => n,MixMonitor(${{HOTLINE_REC}},{REC_OPTIONS})
 same => n,Playback({snd}/${{HOTLINE_LANG}}/please_hold)
 ; green channel from the registry when the caller did not choose it in the IVR
 same => n,GotoIf($["${{HOTLINE_GREEN}}" != ""]?hours)
 same => n,GotoIf(${{DIALPLAN_EXISTS(hotline-green-registry,${{CALLERID(num)}},1)}}?:hours)
 same => n,Gosub(hotline-green-registry,${{CALLERID(num)}},1)
 same => n,Set(__HOTLINE_GREEN=${{GOSUB_RETVAL}})
 same => n(hours),Gosub(hotline-hours-${{HOTLINE_CITY}},s,1)
 same => n,Set(HOTLINE_OPEN=${{GOSUB_RETVAL}})
 same => n,Set(QUEUE_PRIO=${{IF($["${{HOTLINE_GREEN}}" = ""]?0:{cfg.routing.green_channel.priority})}})
 same => n,Set(HOTLINE_QUEUED_AT=${{EPOCH}})
 same => n,UserEvent(HotlineRoute,Recording: ${{HOTLINE_REC}},Open: ${{HOTLINE_OPEN}},Green: ${{HOTLINE_GREEN}},Priority: ${{QUEUE_PRIO}})
""" + "".join(f" same => n,{line}\n" for line in workflow.router_dialplan(cfg)) + f"""
[hotline-step]
; ARG1 queue, ARG2 seconds to wait, ARG3 target, ARG4 1 = conference in an interpreter on answer.
; A queue nobody is logged in to (EMPTY) or with too
; many callers per agent (BUSY) is skipped at once; the record keeps every queue left and why.
exten => s,1,Set(LOCAL(logged)=${{QUEUE_MEMBER(${{ARG1}},logged)}})
 same => n,Set(LOCAL(why)=)
 same => n,ExecIf($[${{LOCAL(logged)}} = 0]?Set(LOCAL(why)=EMPTY))
 same => n,ExecIf($["${{LOCAL(why)}}" = "" & ${{QUEUE_WAITING_COUNT(${{ARG1}})}} >= ${{LOCAL(logged)}} * {cfg.routing.overflow.waiting_per_agent}]?Set(LOCAL(why)=BUSY))
 same => n,GotoIf($["${{LOCAL(why)}}" != ""]?left)
 same => n,Set(__HOTLINE_QUEUE=${{ARG1}})
 same => n,Set(__HOTLINE_TARGET=${{ARG3}})
 ; position and expected wait, only when nobody is free (never delays a connection); the
 ; formula is workflow.wait_announcement's
 same => n,GotoIf($[${{QUEUE_MEMBER(${{ARG1}},free)}} > 0]?join)
 same => n,GotoIf(${{DIALPLAN_EXISTS(hotline-wait-langs,${{HOTLINE_LANG}},1)}}?:join)
 ; at the lowest priority everyone waiting is served first: no walk through the queue (one lookup per
 ; waiting caller, quadratic at a peak)
 same => n,Set(LOCAL(ahead)=${{QUEUE_WAITING_COUNT(${{ARG1}})}})
 same => n,GotoIf($[0${{QUEUE_PRIO}} = 0]?counted)
 same => n,Gosub(hotline-ahead,s,1(${{ARG1}},${{QUEUE_PRIO}},${{STRFTIME(,,%s%3q)}}))
 same => n,Set(LOCAL(ahead)=${{GOSUB_RETVAL}})
 same => n(counted),Set(LOCAL(min)=$[CEIL((2 * ${{LOCAL(ahead)}} + 1) * ${{HL_AHT}} / (2 * ${{LOCAL(logged)}} * 60))])
 same => n,ExecIf($[${{LOCAL(min)}} < 1]?Set(LOCAL(min)=1))
 same => n,ExecIf($[${{LOCAL(min)}} > {MAX_MINUTES}]?Set(LOCAL(min)={MAX_MINUTES}))
 same => n,Set(LOCAL(ahead)=${{IF($[${{LOCAL(ahead)}} > {MAX_AHEAD}]?{MAX_AHEAD}:${{LOCAL(ahead)}})}})
 same => n,Set(LOCAL(say)=${{IF($[${{LOCAL(ahead)}} = 0]?position_next:position_${{LOCAL(ahead)}})}})
 same => n,UserEvent(HotlineWaitAnnounced,Queue: ${{ARG1}},Ahead: ${{LOCAL(ahead)}},Minutes: ${{LOCAL(min)}})
 same => n,Playback(${{HL_SOUNDS}}/${{HOTLINE_LANG}}/${{LOCAL(say)}}&${{HL_SOUNDS}}/${{HOTLINE_LANG}}/wait_${{LOCAL(min)}})
 same => n(join),Set(__HOTLINE_STEP_AT=${{STRFTIME(,,%s%3q)}})
 same => n,Set(__HOTLINE_INTERPRETER=${{ARG4}})
 same => n,UserEvent(HotlineQueue,Queue: ${{ARG1}},Target: ${{ARG3}},Wait: ${{ARG2}})
 same => n,Queue(${{ARG1}},t,,,${{ARG2}},,hotline-agent-answer)
 same => n,Set(LOCAL(why)=${{QUEUESTATUS}})
 same => n(left),Set(__HOTLINE_OVERFLOW=${{HOTLINE_OVERFLOW}}${{IF($["${{HOTLINE_OVERFLOW}}" = ""]?:/)}}${{ARG1}}:${{LOCAL(why)}})
 same => n,UserEvent(HotlineOverflow,From: ${{ARG1}},Reason: ${{LOCAL(why)}},Path: ${{HOTLINE_OVERFLOW}})
 same => n,Return()

[hotline-ahead]
; ARG1 queue, ARG2 priority, ARG3 join time (ms): how many waiting callers are served before this one
; (higher priority, or the same priority and joined earlier; callback placeholders count as early)
exten => s,1,Set(LOCAL(n)=0)
 same => n,Set(LOCAL(i)=1)
 same => n(loop),GotoIf($[${{LOCAL(i)}} > ${{QUEUE_WAITING_COUNT(${{ARG1}})}}]?done)
 same => n,Set(LOCAL(other)=${{QUEUE_GET_CHANNEL(${{ARG1}},${{LOCAL(i)}})}})
 same => n,Set(LOCAL(op)=${{IMPORT(${{LOCAL(other)}},QUEUE_PRIO)}})
 same => n,Set(LOCAL(ot)=${{IMPORT(${{LOCAL(other)}},HOTLINE_STEP_AT)}})
 same => n,ExecIf($[0${{LOCAL(op)}} > 0${{ARG2}} | (0${{LOCAL(op)}} = 0${{ARG2}} & 0${{LOCAL(ot)}} < ${{ARG3}})]?Set(LOCAL(n)=$[${{LOCAL(n)}} + 1]))
 same => n,Set(LOCAL(i)=$[${{LOCAL(i)}} + 1])
 same => n,Goto(loop)
 same => n(done),Return(${{LOCAL(n)}})

[hotline-wait-langs]
; languages whose position and wait prompts are real speech
""" + "".join(f"exten => {l.code},1,Return()\n" for l in cfg.ivr.languages if announces_waits(cfg, l.code)) + \
        callback_contexts(cfg) + workflow_contexts(cfg) + hours_contexts(cfg) + green_registry_context(cfg) + """

[hotline-agent-answer]
; runs on the agent's channel when connected; MASTER_CHANNEL is the caller's channel
exten => s,1,Set(MASTER_CHANNEL(HOTLINE_ANSWERED_AT)=${EPOCH})
 ; the agent's phone transfers (REFER, or DTMF #1 / *2) land in the desk's transfer targets
 same => n,Set(TRANSFER_CONTEXT=hotline-transfer)
 same => n,Set(MASTER_CHANNEL(HOTLINE_AGENT)=${CHANNEL(endpoint)})
 same => n,Set(MASTER_CHANNEL(HOTLINE_AGENT_CHAN)=${CHANNEL})
 same => n,UserEvent(HotlineAnswered,Agent: ${CHANNEL(endpoint)},Queue: ${HOTLINE_QUEUE})
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
""" + interpreter_dial_context(cfg) + f"""

[hotline-voicemail]
exten => s,1,Set(BOX=${{IF($["${{HOTLINE_CITY}}" = ""]?{cfg.province.id}:${{HOTLINE_CITY}})}})
 same => n,UserEvent(HotlineVoicemail,Mailbox: ${{BOX}})
 same => n,Playback({snd}/${{HOTLINE_LANG}}/voicemail)
 same => n,VoiceMail(${{BOX}}@hotline,s)
 same => n,Hangup(16)

[hotline-unknown]
exten => s,1,UserEvent(HotlineUnknownNumber,DID: ${{HOTLINE_DID}})
 same => n,Log(NOTICE,12348: unknown dialed number '${{HOTLINE_DID}}' from '${{CALLERID(num)}}')
 ; early media: the apology is heard without answering (no charge to the caller)
 same => n,Progress()
 same => n,Playback({unknown_prompts},noanswer)
 same => n,Hangup(1)

""" + desk_contexts(cfg) + """
[hotline-refuse]
; partner trunks are for warm transfers out: nothing may come in on them
exten => _.,1,Hangup(21)
exten => s,1,Hangup(21)

; ---------------------------------------------------------------- agents' phones
[hotline-agents]
exten => *43,1,Answer()
 same => n,Echo()
 same => n,Hangup()
""")
    return "".join(out)


def desk_contexts(cfg: HotlineConfig) -> str:
    """Where the desk's transfers, holds and listen-ins land (agents/desk.py drives them over AMI)."""
    limit = cfg.system.controller.hold_limit_seconds
    trunk = cfg.system.trunk.name
    out = ["""
; ---------------------------------------------------------------- the agent desk
[hotline-transfer]
; blind: the caller is sent here; attended: the agent's consultation call dials from here.
; A transfer nobody takes ends in the target's voicemail, never in silence.
"""]
    for a in cfg.agents:
        home = a.queues[0]
        out.append(f"exten => agent-{a.id},1,UserEvent(HotlineTransfer,Target: agent-{a.id})\n"
                   f" same => n,Dial(PJSIP/{a.id},30)\n"
                   f" same => n,Set(__HOTLINE_CITY=${{IF($[\"${{HOTLINE_CITY}}\" = \"\"]?{home}:${{HOTLINE_CITY}})}})\n"
                   f" same => n,Goto(hotline-voicemail,s,1)\n")
    for q in workflow.all_queues(cfg):
        city = q if q in {c.id for c in cfg.cities} else ""
        out.append(f"exten => queue-{q},1,UserEvent(HotlineTransfer,Target: queue-{q})\n"
                   + (f" same => n,Set(__HOTLINE_CITY={city})\n" if city else "")
                   + f" same => n,Set(__HOTLINE_QUEUE={q})\n"
                   f" same => n,Queue({q},t,,,1800,,hotline-agent-answer)\n"
                   f" same => n,Goto(hotline-voicemail,s,1)\n")
    partners = cfg.partners
    for number, label in cfg.routing.transfer_numbers.items():
        p = partners.get(number)
        if p is not None and p.sip is not None:
            # the partner's own trunk (per city), the ticket id in a header for their screen-pop
            out.append(f"exten => ext-{number},1,UserEvent(HotlineTransfer,Target: ext-{number})  ; {label}\n"
                       f" same => n,Gosub(hotline-partner-{number},${{IF($[\"${{HOTLINE_CITY}}\" = \"\"]?default:${{HOTLINE_CITY}})}},1)\n"
                       f" same => n,Dial(PJSIP/{number}@${{GOSUB_RETVAL}},60,b(hotline-partner-headers-{number}^s^1))\n"
                       f" same => n,Hangup()\n")
        else:
            out.append(f"exten => ext-{number},1,UserEvent(HotlineTransfer,Target: ext-{number})  ; {label}\n"
                       f" same => n,Dial(PJSIP/{number}@{trunk},60)\n"
                       f" same => n,Hangup()\n")
    for pid, p in partners.items():
        if p.sip is None:
            continue
        out.append(f"[hotline-partner-{pid}]\n; which of {pid}'s trunks serves the caller's city\n")
        for city in p.sip.uris:
            if city != "default":
                out.append(f"exten => {city},1,Return(partner-{pid}-{city})\n")
        out.append(f"exten => _[a-z].,1,Return(partner-{pid}-default)\n"
                   f"[hotline-partner-headers-{pid}]\n"
                   f"; pre-dial on the outgoing leg: HOTLINE_TICKET is inherited from the call (set by the controller)\n"
                   f"exten => s,1,Set(PJSIP_HEADER(add,{p.sip.ticket_header})=${{HOTLINE_TICKET}})\n"
                   f" same => n,Set(PJSIP_HEADER(add,X-12348-Call-Id)=${{CHANNEL(linkedid)}})\n"
                   f" same => n,Return()\n[hotline-transfer]\n")
    out.append("; numeric aliases: an attended transfer over AMI dials its target as DTMF digits\n")
    for named, number in transfer_extensions(cfg).items():
        out.append(f"exten => {number},1,Goto({named},1)\n")
    out.append(survey_contexts())
    out.append(f"""
[hotline-hold]
; a held caller hears music until the agent takes the call back (AMI Bridge, which sets
; HOTLINE_UNHELD) or the hold limit passes: then back to the front of the queue
exten => s,1,Set(HOTLINE_UNHELD=0)
 same => n,UserEvent(HotlineHold,State: on)
 same => n,MusicOnHold(default,{limit})
 same => n,GotoIf($["${{HOTLINE_UNHELD}}" = "1"]?done)
 same => n,UserEvent(HotlineHold,State: limit)
 same => n,Set(QUEUE_PRIO=20)
 same => n,Queue(${{HOTLINE_QUEUE}},t,,,1800,,hotline-agent-answer)
 same => n,Goto(hotline-voicemail,s,1)
 same => n(done),Hangup()

[hotline-held]
; the agent's side of a hold: silence, ended when the held caller is gone (HOLD_PEER)
exten => s,1,Set(HOTLINE_UNHELD=0)
 same => n(wait),Wait(1)
 same => n,GotoIf($["${{HOTLINE_UNHELD}}" = "1"]?done)
 same => n,GotoIf(${{CHANNEL_EXISTS(${{HOLD_PEER}})}}?wait)
 same => n(done),Hangup()
""")
    return "".join(out)


def survey_contexts() -> str:
    """The follow-up visit (回访) survey the controller dials callers into (backoffice/followups.py):
    three ratings 1-5; 0 asks for a callback, 9 opts out of follow-ups. The hangup handler reports
    the end however the call ends, so nothing depends on the caller listening to the thanks."""
    snd = "${HL_SOUNDS}/${HL_LANG}"
    return f"""
[hotline-survey]
exten => s,1,Set(SURVEY_RESULT=hangup)
 same => n,Set(SURVEY_CALLBACK=0)
 same => n,Set(CHANNEL(hangup_handler_push)=hotline-survey-end,s,1)
 same => n,Set(CHANNEL(language)=${{HL_LANG}})
 same => n,Answer()
 same => n,Wait(0.5)
 ; the intro leads into the first question: a key pressed during it already counts
 same => n,Gosub(hotline-survey-q,s,1(attitude,{snd}/survey_intro&))
 same => n,GotoIf($["${{GOSUB_RETVAL}}" = "stop"]?bye)
 same => n,Gosub(hotline-survey-q,s,1(efficiency))
 same => n,GotoIf($["${{GOSUB_RETVAL}}" = "stop"]?bye)
 same => n,Gosub(hotline-survey-q,s,1(professionalism))
 same => n,GotoIf($["${{GOSUB_RETVAL}}" = "stop"]?bye)
 same => n,Set(SURVEY_RESULT=done)
 same => n,Playback({snd}/survey_thanks)
 same => n(bye),Hangup()

[hotline-survey-q]
; ARG1 the question (ARG2 a prompt before it): one key, three tries; 1-5 is a rating, 0 a
; callback request, 9 opt out
exten => s,1,Set(LOCAL(try)=0)
 same => n,Set(LOCAL(before)=${{ARG2}})
 same => n(ask),Read(KEY,${{LOCAL(before)}}{snd}/survey_${{ARG1}},1,,1,6)
 same => n,Set(LOCAL(before)=)
 same => n,GotoIf($["${{KEY}}" = "9"]?optout)
 same => n,ExecIf($["${{KEY}}" = "0"]?Set(SURVEY_CALLBACK=1))
 same => n,GotoIf($["${{KEY}}" = "0"]?ask)
 same => n,GotoIf($["${{KEY}}" =~ "^[1-5]$"]?rated)
 same => n,Set(LOCAL(try)=$[${{LOCAL(try)}} + 1])
 same => n,GotoIf($[${{LOCAL(try)}} < 3]?ask)
 same => n,Return(skip)
 same => n(rated),UserEvent(HotlineSurvey,FollowUp: ${{HL_FU}},Question: ${{ARG1}},Score: ${{KEY}})
 same => n,Return(ok)
 same => n(optout),Set(SURVEY_RESULT=optout)
 same => n,Playback({snd}/survey_optout)
 same => n,Return(stop)

[hotline-survey-end]
exten => s,1,UserEvent(HotlineSurveyEnd,FollowUp: ${{HL_FU}},Result: ${{SURVEY_RESULT}},Callback: ${{SURVEY_CALLBACK}})
 same => n,Return()
"""


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
    out += [f"exten => {d:%Y%m%d},1,Return()\n" for d in sorted(any_sched.closed)]
    out.append("\n[hotline-make-up-days]\n")
    out += [f"exten => {d:%Y%m%d},1,Return()\n" for d in sorted(any_sched.workdays)]
    for c in cfg.cities:
        sch = cfg.schedules[c.id]
        out.append(f"\n[hotline-hours-{c.id}]\n")
        if sch.always_open:
            out.append("exten => s,1,Return(1)  ; open 24/7\n")
            continue
        out.append(f"exten => s,1,Set(LOCAL(d)=${{STRFTIME(${{EPOCH}},{tz},%Y%m%d)}})\n")
        out.append(" same => n,GotoIf(${DIALPLAN_EXISTS(hotline-closed-days,${LOCAL(d)},1)}?closed)\n")
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
    out = ["\n[hotline-green-registry]\n; callers known to qualify (config/green_registry.yaml)\n"]
    out += [f"exten => {num},1,Return({cat})\n" for num, cat in sorted(cfg.green_registry.items())]
    return "".join(out)


def callback_contexts(cfg: HotlineConfig) -> str:
    """Callback keeping the caller's place, entirely in the dialplan (no controller needed).

    The caller presses the key while queued and hangs up; a Local-channel placeholder joins the same
    queue at the caller's place (counted from who joined earlier and with what priority), so nobody
    who stayed is overtaken. When an agent answers the placeholder, the caller is dialled; if they do
    not answer the placeholder returns after a pause, a few times, then gives up politely. The
    request lives in AstDB (hlcb/<call>), so it survives restarts and exists exactly once.
    """
    t, cb = cfg.system.trunk, cfg.system.queues.callback
    if not t.outbound:
        return ""
    return f"""
[hotline-queue-keys]
exten => {cb.key},1,Set(Q=${{HOTLINE_QUEUE}})
 same => n,Set(ME=${{HOTLINE_STEP_AT}})
 same => n,Set(PRIO=${{IF($["${{QUEUE_PRIO}}" = ""]?0:${{QUEUE_PRIO}})}})
 same => n,Gosub(hotline-ahead,s,1(${{Q}},${{PRIO}},${{ME}}))
 same => n,Set(POS=$[${{GOSUB_RETVAL}} + 1])
 same => n,Set(DB(hlcb/${{UNIQUEID}}/queue)=${{Q}})
 same => n,Set(DB(hlcb/${{UNIQUEID}}/position)=${{POS}})
 same => n,Set(DB(hlcb/${{UNIQUEID}}/prio)=${{PRIO}})
 ; digits only: the number goes into a Dial() string later (a caller ID is the caller's to set)
 same => n,Set(DB(hlcb/${{UNIQUEID}}/number)=${{FILTER(0123456789+,${{CALLERID(num)}})}})
 same => n,Set(DB(hlcb/${{UNIQUEID}}/did)=${{HOTLINE_DID}})
 same => n,Set(DB(hlcb/${{UNIQUEID}}/city)=${{HOTLINE_CITY}})
 same => n,Set(DB(hlcb/${{UNIQUEID}}/lang)=${{HOTLINE_LANG}})
 same => n,Set(DB(hlcb/${{UNIQUEID}}/attempt)=1)
 same => n,UserEvent(HotlineCallbackRequest,Queue: ${{Q}},Position: ${{POS}},Priority: ${{PRIO}})
 same => n,Originate(Local/${{UNIQUEID}}@hotline-cb-hold,exten,hotline-cb-dial,${{UNIQUEID}},1,86400,a)
 same => n,Playback(${{HL_SOUNDS}}/${{HOTLINE_LANG}}/callback_confirm)
 same => n,Hangup(16)

[hotline-cb-hold]
; the placeholder (Local ;2): waits in the queue in the caller's place. ID is the caller's call id, or
; t<task id> for a callback the controller schedules (voicemail left after hours)
exten => _[0-9t].,1,Set(ID=${{EXTEN}})
 ; a callback the controller scheduled arrives with its request in (inherited) variables
 same => n,GotoIf($["${{HLCB_QUEUE}}" = "" | "${{DB(hlcb/${{ID}}/queue)}}" != ""]?load)
 same => n,Set(DB(hlcb/${{ID}}/queue)=${{HLCB_QUEUE}})
 same => n,Set(DB(hlcb/${{ID}}/position)=1)
 same => n,Set(DB(hlcb/${{ID}}/prio)=0)
 same => n,Set(DB(hlcb/${{ID}}/number)=${{FILTER(0123456789+,${{HLCB_NUMBER}})}})
 same => n,Set(DB(hlcb/${{ID}}/did)=${{HLCB_DID}})
 same => n,Set(DB(hlcb/${{ID}}/city)=${{HLCB_CITY}})
 same => n,Set(DB(hlcb/${{ID}}/lang)=${{HLCB_LANG}})
 same => n,Set(DB(hlcb/${{ID}}/attempt)=1)
 same => n(load),Set(Q=${{DB(hlcb/${{ID}}/queue)}})
 same => n,GotoIf($["${{Q}}" = ""]?gone)
 same => n,Set(ATTEMPT=${{DB(hlcb/${{ID}}/attempt)}})
 same => n,Set(POS=${{IF($[${{ATTEMPT}} = 1]?${{DB(hlcb/${{ID}}/position)}}:1)}})
 same => n,ExecIf($[${{ATTEMPT}} > 1]?Wait({cb.retry_seconds}))
 same => n,Set(QUEUE_PRIO=${{DB(hlcb/${{ID}}/prio)}})
 same => n,Set(__HOTLINE_CITY=${{DB(hlcb/${{ID}}/city)}})
 same => n,Set(__HOTLINE_LANG=${{DB(hlcb/${{ID}}/lang)}})
 same => n,Set(__HOTLINE_QUEUE=${{Q}})
 same => n,Set(__HOTLINE_CALLBACK=${{ID}})
 same => n,UserEvent(HotlineCallback,Origin: ${{ID}},Number: ${{DB(hlcb/${{ID}}/number)}},Queue: ${{Q}},City: ${{HOTLINE_CITY}},Lang: ${{HOTLINE_LANG}},Attempt: ${{ATTEMPT}},Position: ${{POS}})
 same => n,Queue(${{Q}},t,,,86400,,hotline-agent-answer,,${{POS}})
 same => n(gone),Hangup()

[hotline-cb-dial]
; Local ;1: an agent has taken the placeholder; now ring the caller, showing the hotline's number
exten => _[0-9t].,1,Set(ID=${{EXTEN}})
 same => n,Set(NUM=${{DB(hlcb/${{ID}}/number)}})
 same => n,Set(CALLERID(all)=12348 <${{DB(hlcb/${{ID}}/did)}}>)
 same => n,Set(__HOTLINE_REC=${{STRFTIME(${{EPOCH}},,%Y%m%d)}}/${{UNIQUEID}}.wav)
 same => n,MixMonitor(${{HOTLINE_REC}},{REC_OPTIONS})
 same => n,UserEvent(HotlineCallbackDial,Origin: ${{ID}},Number: ${{NUM}},Recording: ${{HOTLINE_REC}})
 same => n,Playback(${{HL_SOUNDS}}/{cfg.ivr.default_language}/callback_agent_intro)
 same => n,Dial(PJSIP/${{NUM}}@{t.name},{cb.ring_seconds},U(hotline-cb-answered^${{ID}}))
 same => n,GotoIf($["${{DIALSTATUS}}" = "ANSWER"]?done)
 same => n,Playback(${{HL_SOUNDS}}/{cfg.ivr.default_language}/callback_unreachable)
 same => n,Set(ATTEMPT=$[${{DB(hlcb/${{ID}}/attempt)}} + 1])
 same => n,GotoIf($[${{ATTEMPT}} > {cb.attempts}]?giveup)
 same => n,Set(DB(hlcb/${{ID}}/attempt)=${{ATTEMPT}})
 same => n,UserEvent(HotlineCallbackResult,Origin: ${{ID}},Result: retry,Attempt: ${{ATTEMPT}},Status: ${{DIALSTATUS}})
 same => n,Originate(Local/${{ID}}@hotline-cb-hold,exten,hotline-cb-dial,${{ID}},1,86400,a)
 same => n,Hangup(16)
 same => n(giveup),UserEvent(HotlineCallbackResult,Origin: ${{ID}},Result: failed,Attempt: ${{ATTEMPT}},Status: ${{DIALSTATUS}})
 same => n,DBdeltree(hlcb/${{ID}})
 same => n,Hangup(16)
 same => n(done),Hangup(16)

[hotline-cb-answered]
; on the caller's leg the moment they answer: the callback has happened, once
exten => s,1,UserEvent(HotlineCallbackResult,Origin: ${{ARG1}},Result: done,Attempt: ${{DB(hlcb/${{ARG1}}/attempt)}},Status: ANSWER)
 same => n,DBdeltree(hlcb/${{ARG1}})
 same => n,Return()
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
