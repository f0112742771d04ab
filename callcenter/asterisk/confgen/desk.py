"""The agent desk's contexts: transfer targets, partner trunks' routing, holds (and the survey
the controller dials callers into, kept next to them as in the generated file)."""
from __future__ import annotations

from core.config import HotlineConfig
from core import workflow
from core.transfers import transfer_extensions

from .survey import survey_contexts


def desk_contexts(cfg: HotlineConfig) -> str:
    """Where the desk's transfers, holds and listen-ins land (agents/desk.py drives them over AMI)."""
    return (_transfer_targets(cfg) + _partner_routes(cfg) + _transfer_aliases(cfg) + survey_contexts()
            + _hold(cfg))


def _transfer_targets(cfg: HotlineConfig) -> str:
    """Agents, queues and outside numbers a call can be transferred to."""
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
    return "".join(out)


def _partner_routes(cfg: HotlineConfig) -> str:
    """Per partner: which trunk serves the caller's city, and the headers for its screen-pop. Each
    ends by reopening [hotline-transfer], where the numeric aliases that follow belong."""
    out = []
    for pid, p in cfg.partners.items():
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
    return "".join(out)


def _transfer_aliases(cfg: HotlineConfig) -> str:
    out = ["; numeric aliases: an attended transfer over AMI dials its target as DTMF digits\n"]
    for named, number in transfer_extensions(cfg).items():
        out.append(f"exten => {number},1,Goto({named},1)\n")
    return "".join(out)


def _hold(cfg: HotlineConfig) -> str:
    limit = cfg.system.controller.hold_limit_seconds
    return f"""
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
"""
