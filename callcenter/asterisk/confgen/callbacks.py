"""Callbacks that keep the caller's place in the queue (offered only when the trunk can dial out)."""
from __future__ import annotations

from core.config import HotlineConfig
from core.numbering import dialplan_patterns, plan_area_codes

from .common import REC_OPTIONS


def callback_contexts(cfg: HotlineConfig) -> str:
    """Callback keeping the caller's place, entirely in the dialplan (no controller needed).

    The caller presses the key while queued and hangs up; a Local-channel placeholder joins the same
    queue at the caller's place (counted from who joined earlier and with what priority), so nobody
    who stayed is overtaken. When an agent answers the placeholder, the caller is dialled; if they do
    not answer the placeholder returns after a pause, a few times, then gives up politely. The
    request lives in AstDB (hlcb/<call>), so it survives restarts and exists exactly once.
    """
    if not cfg.system.trunk.outbound:
        return ""
    return _queue_key(cfg) + _placeholder(cfg) + _dial(cfg) + _answered() + _plan(cfg)


def _queue_key(cfg: HotlineConfig) -> str:
    """The caller's key while queued: note the request and their place, start the placeholder."""
    cb = cfg.system.queues.callback
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
"""


def _placeholder(cfg: HotlineConfig) -> str:
    cb = cfg.system.queues.callback
    return f"""
[hotline-cb-hold]
; the placeholder (Local ;2): waits in the queue in the caller's place. ID is the caller's call id (after
; the node's name with several nodes: asterisk.conf systemname), or
; t<task id> for a callback the controller schedules (voicemail left after hours)
exten => _[0-9a-z].,1,Set(ID=${{EXTEN}})
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
 ; the numbering plan (core/numbering.py): a caller ID is the caller's to set, and +882… or a premium
 ; number is never called back (toll fraud)
 same => n,GotoIf(${{DIALPLAN_EXISTS(hotline-cb-plan,${{DB(hlcb/${{ID}}/number)}},1)}}?:refused)
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
 same => n(refused),UserEvent(HotlineCallbackResult,Origin: ${{ID}},Result: failed,Attempt: 0,Status: REFUSED,Number: ${{DB(hlcb/${{ID}}/number)}})
 same => n,DBdeltree(hlcb/${{ID}})
 same => n,Hangup()
"""


def _dial(cfg: HotlineConfig) -> str:
    """An agent took the placeholder: ring the caller; no answer retries later, a few times."""
    t, cb = cfg.system.trunk, cfg.system.queues.callback
    return f"""
[hotline-cb-dial]
; Local ;1: an agent has taken the placeholder; now ring the caller, showing the hotline's number
exten => _[0-9a-z].,1,Set(ID=${{EXTEN}})
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
"""


def _answered() -> str:
    return """
[hotline-cb-answered]
; on the caller's leg the moment they answer: the callback has happened, once
exten => s,1,UserEvent(HotlineCallbackResult,Origin: ${ARG1},Result: done,Attempt: ${DB(hlcb/${ARG1}/attempt)},Status: ANSWER)
 same => n,DBdeltree(hlcb/${ARG1})
 same => n,Return()
"""


def _plan(cfg: HotlineConfig) -> str:
    """The numbers a callback may ring: config/hotline.yaml numbering_plan, as extension patterns."""
    return "\n[hotline-cb-plan]\n; numbers a callback may ring (numbering_plan; core/numbering.py)\n" + "".join(
        f"exten => {p},1,Return()\n" for p in dialplan_patterns(cfg.system.numbering_plan, plan_area_codes(cfg)))
