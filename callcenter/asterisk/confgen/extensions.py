"""extensions.conf: the dialplan, in the order a call meets it.

The IVR, queues, overflow and voicemail all live here, so a live call never depends on the
controller. Each section is one function returning its text; ``extensions_conf`` joins them.
The desk, survey, routing-table and callback contexts are in the sibling modules.
"""
from __future__ import annotations

from core.config import HotlineConfig
from core.contract import TRUNK_CONTEXT, Hook
from core.paths import InstancePaths
from core.routing import cities_by_area_code, city_choices
from core import workflow
from ivr_flows.prompts import MAX_AHEAD, MAX_MINUTES, announces_waits

from .callbacks import callback_contexts
from .common import HEADER, REC_OPTIONS, hook
from .desk import desk_contexts
from .prompt_recording import prompt_record_contexts, record_code_extension, trunk_extension
from .routing import (answer_contexts, emergency_contexts, green_registry_context, hours_contexts,
                      interpreter_dial_context, workflow_contexts)

from .cluster import agent_state_context

# prompts are under ${HL_SOUNDS}/<lang>/, set in [globals]
SND = "${HL_SOUNDS}"


def extensions_conf(cfg: HotlineConfig, paths: InstancePaths) -> str:
    return "".join([
        HEADER, _globals(cfg, paths), _trunk(cfg), _subroutines(),
        # the IVR: language, city (shared area codes only), service, green channel
        _language_menu(cfg), _city_menus(cfg), _service_menu(cfg), _green_menu(cfg),
        # routing into queues, each queue step, and what hangs off them
        _queue(cfg), _step(cfg), _ahead(), _wait_langs(cfg),
        callback_contexts(cfg), workflow_contexts(cfg), hours_contexts(cfg), green_registry_context(cfg),
        answer_contexts(), interpreter_dial_context(cfg), emergency_contexts(cfg),
        _voicemail(cfg), _unknown(cfg),
        desk_contexts(cfg), _refuse_and_agents(), record_code_extension(cfg),
        prompt_record_contexts(cfg, paths), agent_state_context(cfg),
    ])


def _globals(cfg: HotlineConfig, paths: InstancePaths) -> str:
    return f"""[globals]
HL_SOUNDS={paths.sounds}
HL_DEFAULT_LANG={cfg.ivr.default_language}
; handle time for wait estimates; the controller updates it from recent calls
HL_AHT={cfg.system.queues.announce.aht_seconds}
"""


def _trunk(cfg: HotlineConfig) -> str:
    """The carrier's calls: one extension per area code's 12348, the same numbers in international
    form, and anything else to the apology."""
    out = [f"""
; ---------------------------------------------------------------- carrier trunk
[{TRUNK_CONTEXT}]
"""]
    out.append(trunk_extension(cfg))
    groups = cities_by_area_code(cfg.cities)
    for area, group in groups.items():
        did = f"{area}12348"
        if len(group) == 1:
            c = group[0]
            out.append(f"exten => {did},1,Gosub(hotline-start,s,1({did},{c.id},{area}))  ; {c.names.zh}\n")
        else:
            out.append(f"exten => {did},1,Gosub(hotline-start,s,1({did},,{area}))  ; shared: "
                       + ", ".join(c.names.zh for c in group) + "\n")
        out.append(f" same => n,Goto(hotline-ivr-{language_menu_name(cfg, [c.id for c in group])},s,1)\n")
    # The carrier's number is untrusted (the Request-URI user part as sent): each pattern filters it to
    # digits first, and a number that changes under the filter is unknown (a ',' would add Gosub
    # arguments and set the city, a '|' would add CDR fields). The raw EXTEN is used nowhere else.
    def guarded(pattern: str, plus: bool, then: str) -> str:
        digits = "+${FILTER(0123456789,${EXTEN:1})}" if plus else "${FILTER(0123456789,${EXTEN})}"
        return (f"exten => {pattern},1,Set(HL_DIALED={digits})\n"
                " same => n,GotoIf($[${LEN(${HL_DIALED})} != ${LEN(${EXTEN})}]?s,1)\n"
                + "".join(f" same => n,{step}\n" for step in then.split("|")))
    out.append("; international forms of the same numbers: +86 833 12348 -> 0833 12348\n")
    out.append(guarded("_+86X.", True, "Goto(0${HL_DIALED:3},1)"))
    out.append(guarded("_0086X.", False, "Goto(0${HL_DIALED:4},1)"))
    out.append(guarded("_86X.", False, "Goto(0${HL_DIALED:2},1)"))
    out.append("; anything else is not a 12348 number: apologise, log, hang up cleanly\n")
    out.append(guarded("_X.", False, "Gosub(hotline-start,s,1(${HL_DIALED},,))|Goto(hotline-unknown,s,1)"))
    out.append(guarded("_+X.", True, "Gosub(hotline-start,s,1(${HL_DIALED},,))|Goto(hotline-unknown,s,1)"))
    out.append("""; no number, or one that changed under the filter (HL_DIALED: its digits)
exten => s,1,Gosub(hotline-start,s,1(${HL_DIALED},,))
 same => n,Goto(hotline-unknown,s,1)
exten => i,1,Goto(hotline-unknown,s,1)
""")
    return "".join(out)


def _subroutines() -> str:
    """Every call starts in hotline-start, records its IVR path with hotline-ivr-step and ends in
    the hotline-hangup handler, whatever context it was in. Both call the admin's hooks."""
    return f"""
[hotline-start]
; ARG1 dialed number, ARG2 city (empty when the area code is shared), ARG3 area code
exten => s,1,Set(__HOTLINE_DID=${{ARG1}})
 same => n,Set(__HOTLINE_CITY=${{ARG2}})
 same => n,Set(__HOTLINE_AREA=${{ARG3}})
 same => n,Set(__HOTLINE_LANG=${{HL_DEFAULT_LANG}})
 same => n,Set(CHANNEL(language)=${{HL_DEFAULT_LANG}})
 same => n,Set(__HOTLINE_IVR_PATH=)
 same => n,Set(HOTLINE_START=${{EPOCH}})
 same => n,Set(__HOTLINE_CALLER_CHAN=${{CHANNEL}})
 ; the caller ID is the caller's or carrier's to set: only digits with one leading + reach the green
 ; registry and the log (HL_CID), anything else counts as no number (core.numbering.caller_id)
 same => n,Set(HL_CID=${{FILTER(+,${{CALLERID(num):0:1}})}}${{FILTER(0123456789,${{CALLERID(num)}})}})
 same => n,ExecIf($[${{LEN(${{HL_CID}})}} != ${{LEN(${{CALLERID(num)}})}}]?Set(HL_CID=))
 same => n,Set(CHANNEL(hangup_handler_push)=hotline-hangup,s,1)
 same => n,UserEvent(HotlineCall,DID: ${{ARG1}},City: ${{ARG2}},Area: ${{ARG3}})
 same => n,{hook(Hook.INBOUND)}
 same => n,Return()

[hotline-ivr-step]
; ARG1 step, ARG2 value, ARG3 how (dtmf|default): appends to the IVR path kept on the channel
exten => s,1,Set(STEP=${{ARG1}}=${{ARG2}})
 same => n,GotoIf($["${{ARG3}}" != "default"]?join)
 same => n,Set(STEP=${{STEP}}~default)
 same => n(join),GotoIf($["${{HOTLINE_IVR_PATH}}" = ""]?first)
 same => n,Set(__HOTLINE_IVR_PATH=${{HOTLINE_IVR_PATH}}/${{STEP}})
 same => n,Goto(emit)
 same => n(first),Set(__HOTLINE_IVR_PATH=${{STEP}})
 ; no event per step: the path rides on HotlineQueue and HotlineCallEnd (one event per real change)
 same => n(emit),Return()

[hotline-hangup]
; hangup handler on the caller's channel: the last word on the call, whatever context it was in
exten => s,1,GotoIf($["${{SHARED(HOTLINE_INTERP_CHAN)}}" = ""]?end)
 same => n,SoftHangup(${{SHARED(HOTLINE_INTERP_CHAN)}})
 same => n,ExecIf($["${{HOTLINE_AGENT_CHAN}}" != ""]?SoftHangup(${{HOTLINE_AGENT_CHAN}}))
 ; every fact of the call, read once here (a call that never reached a queue has its path and hours only here)
 same => n(end),UserEvent(HotlineCallEnd,City: ${{HOTLINE_CITY}},Lang: ${{HOTLINE_LANG}},Path: ${{HOTLINE_IVR_PATH}},Queue: ${{HOTLINE_QUEUE}},Agent: ${{HOTLINE_AGENT}},Cause: ${{HANGUPCAUSE}},Voicemail: ${{VM_MESSAGEFILE}},Service: ${{HOTLINE_SERVICE}},Recording: ${{HOTLINE_REC}},Open: ${{HOTLINE_OPEN}},Green: ${{HOTLINE_GREEN}},Overflow: ${{HOTLINE_OVERFLOW}})
 ; the same facts in Asterisk's own CDR (log/cdr-csv/Master.csv): a call that began and ended while
 ; the controller was down is rebuilt from it (callcenter/cdr.py). Asterisk keeps 255 characters of it:
 ; the end and cause first (a long IVR path, or a node's name in the ids, cut "end=" off before), then
 ; the voicemail and recording files (a cut voicemail path made a second callback task for one message),
 ; the IVR path last: the one field a rebuilt record may have shortened
 same => n,Set(CDR(userfield)=hl1|end=${{EPOCH}}|cause=${{HANGUPCAUSE}}|vm=${{VM_MESSAGEFILE}}|rec=${{HOTLINE_REC}}|did=${{HOTLINE_DID}}|city=${{HOTLINE_CITY}}|area=${{HOTLINE_AREA}}|lang=${{HOTLINE_LANG}}|svc=${{HOTLINE_SERVICE}}|queue=${{HOTLINE_QUEUE}}|overflow=${{HOTLINE_OVERFLOW}}|green=${{HOTLINE_GREEN}}|open=${{HOTLINE_OPEN}}|agent=${{HOTLINE_AGENT}}|start=${{HOTLINE_START}}|queued=${{HOTLINE_QUEUED_AT}}|answered=${{HOTLINE_ANSWERED_AT}}|path=${{HOTLINE_IVR_PATH}})
 same => n,{hook(Hook.HANGUP)}
 same => n,Return()
"""


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


def offered_languages(cfg: HotlineConfig, city_ids: list[str]):
    """The IVR languages offered on a number: those offered everywhere, plus those configured for
    every city the number serves (Yi on Liangshan's)."""
    return [l for l in cfg.ivr.languages if not l.cities or (city_ids and set(city_ids) <= set(l.cities))]


def language_menu_name(cfg: HotlineConfig, city_ids: list[str]) -> str:
    """``language`` for the languages offered everywhere, ``language-ii`` when Yi is added, …"""
    extra = [l.code for l in offered_languages(cfg, city_ids) if l.cities]
    return "-".join(["language", *extra])


def _language_menu(cfg: HotlineConfig) -> str:
    """One language menu per set of offered languages (most numbers share the first)."""
    variants = {"language": offered_languages(cfg, [])}
    for group in cities_by_area_code(cfg.cities).values():
        ids = [c.id for c in group]
        variants.setdefault(language_menu_name(cfg, ids), offered_languages(cfg, ids))
    return "".join(_one_language_menu(cfg, name, langs) for name, langs in variants.items())


def _one_language_menu(cfg: HotlineConfig, name: str, languages) -> str:
    """The greeting and each offered language's offer, in that language."""
    ivr = cfg.ivr
    default_lang = ivr.default_language
    lang_options = {}
    for lang in languages:
        lang_options[lang.digit] = [
            f"Set(__HOTLINE_LANG={lang.code})",
            f"Set(CHANNEL(language)={lang.code})",
            f"Gosub(hotline-ivr-step,s,1(lang,{lang.code},dtmf))",
            "Goto(hotline-after-language,s,1)",
        ]
    first = [f"{SND}/{default_lang}/greeting"] + [f"{SND}/{l.code}/lang_offer" for l in languages]
    default_digit = ivr.language(default_lang).digit
    return _menu(name, first, lang_options, default_digit,
                 ivr.menus.language.timeout_seconds, ivr.menus.language.attempts,
                 f"{SND}/{default_lang}/invalid")


def _city_menus(cfg: HotlineConfig) -> str:
    """An area code shared by several cities asks which one; a city's own number skips this."""
    ivr = cfg.ivr
    out = ["""
[hotline-after-language]
exten => s,1,GotoIf($["${HOTLINE_CITY}" != ""]?hotline-ivr-service,s,1)
 same => n,GotoIf(${DIALPLAN_EXISTS(hotline-ivr-city-${HOTLINE_AREA},s,1)}?hotline-ivr-city-${HOTLINE_AREA},s,1)
 same => n,Goto(hotline-unknown,s,1)
"""]
    for area, group in cities_by_area_code(cfg.cities).items():
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
        out.append(_menu(f"city-{area}", [f"{SND}/${{HOTLINE_LANG}}/city_intro", f"{SND}/${{HOTLINE_LANG}}/city_{area}"],
                         opts, default_digit, ivr.menus.city.timeout_seconds, ivr.menus.city.attempts,
                         f"{SND}/${{HOTLINE_LANG}}/invalid"))
    return "".join(out)


def _service_menu(cfg: HotlineConfig) -> str:
    svc = cfg.ivr.menus.service
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
    return _menu("service", [f"{SND}/${{HOTLINE_LANG}}/service_menu"], svc_opts, default_digit,
                 svc.timeout_seconds, svc.attempts, f"{SND}/${{HOTLINE_LANG}}/invalid")


def _green_menu(cfg: HotlineConfig) -> str:
    """Green channel: the caller says which group; no input still gets priority ("unspecified")."""
    svc, green = cfg.ivr.menus.service, cfg.routing.green_channel
    green_opts = {c.digit: [f"Set(__HOTLINE_GREEN={c.id})", f"Gosub(hotline-ivr-step,s,1(green,{c.id},dtmf))",
                            f"Set(__HOTLINE_SERVICE={svc.default})", "Goto(hotline-queue,s,1)"]
                  for c in green.categories}
    green_opts["unspecified"] = ["Set(__HOTLINE_GREEN=unspecified)",
                                 "Gosub(hotline-ivr-step,s,1(green,unspecified,dtmf))",
                                 f"Set(__HOTLINE_SERVICE={svc.default})", "Goto(hotline-queue,s,1)"]
    return _menu("green", [f"{SND}/${{HOTLINE_LANG}}/green_menu"], green_opts, "unspecified",
                 svc.timeout_seconds, svc.attempts, f"{SND}/${{HOTLINE_LANG}}/invalid")


def _queue(cfg: HotlineConfig) -> str:
    """Recording, green registry, opening hours and priority, then the workflow router."""
    return f"""
; ---------------------------------------------------------------- queues, overflow, voicemail
[hotline-queue]
exten => s,1,Set(__HOTLINE_REC=${{STRFTIME(${{EPOCH}},,%Y%m%d)}}/${{UNIQUEID}}.wav)
 ; record only while the caller is bridged to an agent (the prompt below announces it): the mix,
 ; and each speaker on its own track for transcription (r = what the caller says, t = what they hear)
 same => n,MixMonitor(${{HOTLINE_REC}},{REC_OPTIONS})
 same => n,Playback({SND}/${{HOTLINE_LANG}}/please_hold)
 ; green channel from the registry when the caller did not choose it in the IVR
 same => n,GotoIf($["${{HOTLINE_GREEN}}" != ""]?hours)
 same => n,GotoIf($["${{HL_CID}}" = ""]?hours)
 same => n,GotoIf(${{DIALPLAN_EXISTS(hotline-green-registry,${{HL_CID}},1)}}?:hours)
 same => n,Gosub(hotline-green-registry,${{HL_CID}},1)
 same => n,Set(__HOTLINE_GREEN=${{GOSUB_RETVAL}})
 same => n(hours),Gosub(hotline-hours-${{HOTLINE_CITY}},s,1)
 same => n,Set(HOTLINE_OPEN=${{GOSUB_RETVAL}})
 same => n,Set(QUEUE_PRIO=${{IF($["${{HOTLINE_GREEN}}" = ""]?0:{cfg.routing.green_channel.priority})}})
 same => n,Set(HOTLINE_QUEUED_AT=${{EPOCH}})
 ; routing decided: told to the controller with the first queue step (HotlineQueue's Routed, ms)
 same => n,Set(HL_ROUTED=${{STRFTIME(,,%s%3q)}})
""" + "".join(f" same => n,{line}\n" for line in workflow.router_dialplan(cfg))


def _step(cfg: HotlineConfig) -> str:
    """One queue of a workflow: skipped at once when empty or too busy, else the wait announcement
    and the queue itself; the overflow path records every queue left and why."""
    return f"""
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
 same => n,Set(LOCAL(ahead)=)
 same => n,Set(LOCAL(min)=)
 ; position and expected wait, only when nobody is free (never delays a connection); the
 ; formula is workflow.wait_announcement's
 same => n,GotoIf($[${{QUEUE_MEMBER(${{ARG1}},free)}} > 0]?emit)
 same => n,GotoIf(${{DIALPLAN_EXISTS(hotline-wait-langs,${{HOTLINE_LANG}},1)}}?:emit)
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
 ; one event per queue step: where the caller goes, what they are told (Ahead and Minutes, empty when
 ; nothing is announced) and the routing facts (the first step also carries when routing was decided)
 same => n(emit),UserEvent(HotlineQueue,Queue: ${{ARG1}},Target: ${{ARG3}},Wait: ${{ARG2}},Ahead: ${{LOCAL(ahead)}},Minutes: ${{LOCAL(min)}},Path: ${{HOTLINE_IVR_PATH}},Service: ${{HOTLINE_SERVICE}},Recording: ${{HOTLINE_REC}},Open: ${{HOTLINE_OPEN}},Green: ${{HOTLINE_GREEN}},Priority: ${{QUEUE_PRIO}},Routed: ${{HL_ROUTED}})
 same => n,Set(HL_ROUTED=)
 same => n,GotoIf($["${{LOCAL(min)}}" = ""]?join)
 same => n,Set(LOCAL(say)=${{IF($[${{LOCAL(ahead)}} = 0]?position_next:position_${{LOCAL(ahead)}})}})
 same => n,Playback(${{HL_SOUNDS}}/${{HOTLINE_LANG}}/${{LOCAL(say)}}&${{HL_SOUNDS}}/${{HOTLINE_LANG}}/wait_${{LOCAL(min)}})
 same => n(join),Set(__HOTLINE_STEP_AT=${{STRFTIME(,,%s%3q)}})
 same => n,Set(__HOTLINE_INTERPRETER=${{ARG4}})
 same => n,Queue(${{ARG1}},t,,,${{ARG2}},,hotline-agent-answer)
 same => n,Set(LOCAL(why)=${{QUEUESTATUS}})
 same => n(left),Set(__HOTLINE_OVERFLOW=${{HOTLINE_OVERFLOW}}${{IF($["${{HOTLINE_OVERFLOW}}" = ""]?:/)}}${{ARG1}}:${{LOCAL(why)}})
 same => n,UserEvent(HotlineOverflow,From: ${{ARG1}},Reason: ${{LOCAL(why)}},Path: ${{HOTLINE_OVERFLOW}})
 same => n,Return()
"""


def _ahead() -> str:
    return """
[hotline-ahead]
; ARG1 queue, ARG2 priority, ARG3 join time (ms): how many waiting callers are served before this one
; (higher priority, or the same priority and joined earlier; callback placeholders count as early)
exten => s,1,Set(LOCAL(n)=0)
 same => n,Set(LOCAL(i)=1)
 same => n(loop),GotoIf($[${LOCAL(i)} > ${QUEUE_WAITING_COUNT(${ARG1})}]?done)
 same => n,Set(LOCAL(other)=${QUEUE_GET_CHANNEL(${ARG1},${LOCAL(i)})})
 same => n,Set(LOCAL(op)=${IMPORT(${LOCAL(other)},QUEUE_PRIO)})
 same => n,Set(LOCAL(ot)=${IMPORT(${LOCAL(other)},HOTLINE_STEP_AT)})
 same => n,ExecIf($[0${LOCAL(op)} > 0${ARG2} | (0${LOCAL(op)} = 0${ARG2} & 0${LOCAL(ot)} < ${ARG3})]?Set(LOCAL(n)=$[${LOCAL(n)} + 1]))
 same => n,Set(LOCAL(i)=$[${LOCAL(i)} + 1])
 same => n,Goto(loop)
 same => n(done),Return(${LOCAL(n)})
"""


def _wait_langs(cfg: HotlineConfig) -> str:
    return """
[hotline-wait-langs]
; languages whose position and wait prompts are real speech
""" + "".join(f"exten => {l.code},1,Return()\n" for l in cfg.ivr.languages if announces_waits(cfg, l.code))


def _voicemail(cfg: HotlineConfig) -> str:
    """After the last queue step: the city's mailbox (the province's when no city is known)."""
    return f"""

[hotline-voicemail]
exten => s,1,Set(BOX=${{IF($["${{HOTLINE_CITY}}" = ""]?{cfg.province.id}:${{HOTLINE_CITY}})}})
 same => n,UserEvent(HotlineVoicemail,Mailbox: ${{BOX}})
 same => n,{hook(Hook.VOICEMAIL)}
 same => n,Playback({SND}/${{HOTLINE_LANG}}/voicemail)
 same => n,VoiceMail(${{BOX}}@hotline,s)
 same => n,Hangup(16)
"""


def _unknown(cfg: HotlineConfig) -> str:
    """A number that is not a 12348 number: an apology in every language, then hang up."""
    unknown_prompts = "&".join(f"{SND}/{l.code}/unknown_number" for l in offered_languages(cfg, []))
    return f"""
[hotline-unknown]
exten => s,1,UserEvent(HotlineUnknownNumber,DID: ${{HOTLINE_DID}})
 same => n,Log(NOTICE,12348: unknown dialed number '${{HOTLINE_DID}}' from '${{HL_CID}}')
 ; early media: the apology is heard without answering (no charge to the caller)
 same => n,Progress()
 same => n,Playback({unknown_prompts},noanswer)
 same => n,Hangup(1)

"""


def _refuse_and_agents() -> str:
    return """
[hotline-refuse]
; partner trunks are for warm transfers out: nothing may come in on them
exten => _.,1,Hangup(21)
exten => s,1,Hangup(21)

; ---------------------------------------------------------------- agents' phones
[hotline-agents]
exten => *43,1,Answer()
 same => n,Echo()
 same => n,Hangup()
"""
