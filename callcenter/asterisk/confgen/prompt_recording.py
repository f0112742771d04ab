"""Recording IVR prompts by phone: a supervisor dials the feature code from their SIP phone (or the
staff number on the carrier trunk, then a PIN), picks a language and a prompt by number, hears the
number and the current version, records, listens, and accepts (1) or records again (2).

Everything but storing is here in the dialplan. On acceptance it emits HotlinePromptRecorded with
the file; the controller converts and installs it (callcenter/prompt_recording.py) and answers by
setting HL_PROMPT_SAVED on the channel, so the supervisor hears whether it was saved."""
from __future__ import annotations

import hashlib

from core.config import HotlineConfig
from core.paths import InstancePaths
from ivr_flows.prompts import prompt_numbers

STAFF = "${HL_SOUNDS}/staff"
SAVE_WAIT_STEPS = 20     # x 0.5 s: how long the dialplan waits for the controller to install it


def inbox(paths: InstancePaths):
    """Where Record() writes takes (the controller reads the accepted one from here)."""
    return paths.spool / "prompt-inbox"


def record_code_extension(cfg: HotlineConfig) -> str:
    """The feature code in [hotline-agents] (agents', supervisors' phones)."""
    return f"exten => {cfg.system.prompts.record_code},1,Goto(hotline-prompt-record,s,1)\n"


def trunk_extension(cfg: HotlineConfig) -> str:
    """The staff number on the carrier trunk (PIN first), if configured."""
    n = cfg.system.prompts.record_number
    return f"exten => {n},1,Goto(hotline-prompt-pin,s,1)  ; recording prompts by phone\n" if n else ""


def prompt_record_contexts(cfg: HotlineConfig, paths: InstancePaths) -> str:
    supervisors = "".join(f"exten => {s.id},1,Return()\n" for s in cfg.supervisors)
    langs = "".join(f"exten => {l.digit},1,Return({l.code})\n" for l in cfg.ivr.languages)
    ids = "".join(f"exten => {n},1,Return({pid})\n" for pid, n in prompt_numbers(cfg).items())
    return f"""
; ---------------------------------------------------------------- recording prompts by phone
[hotline-prompt-recorders]
; who may record prompts: the roster's supervisors (config/agents.yaml)
{supervisors}
[hotline-prompt-langs]
{langs}
[hotline-prompt-ids]
; prompt number -> prompt id (ivr_flows/prompts.py prompt_numbers; the prompts page shows them)
{ids}
[hotline-prompt-record]
; from a phone of ours: the SIP account says who it is
exten => s,1,Answer()
 same => n,Set(HL_WHO=${{CHANNEL(endpoint)}})
 same => n,GotoIf(${{DIALPLAN_EXISTS(hotline-prompt-recorders,${{HL_WHO}},1)}}?hotline-prompt-menu,s,1)
 same => n,UserEvent(HotlinePromptRefused,By: ${{HL_WHO}},Reason: not_supervisor)
 same => n,Playback({STAFF}/rec_refused)
 same => n,Hangup()

[hotline-prompt-pin]
; from the carrier trunk: the supervisor's PIN says who it is (Authenticate: three tries, then hang up;
; the digits are never in a variable, so never in the log). The file holds MD5s of the PINs only;
; a (with m) sets the account code to the matching line's supervisor.
exten => s,1,Answer()
 same => n,Authenticate({pins_path(paths)},am,8,{STAFF}/rec_pin)
 same => n,Set(HL_WHO=${{CHANNEL(accountcode)}})
 same => n,GotoIf(${{DIALPLAN_EXISTS(hotline-prompt-recorders,${{HL_WHO}},1)}}?hotline-prompt-menu,s,1)
 same => n,Hangup()
; the caller ID proves nothing here (the caller's to set): the refusal names the trunk
exten => h,1,ExecIf($["${{HL_WHO}}" = ""]?UserEvent(HotlinePromptRefused,By: trunk,Reason: bad_pin))

[hotline-prompt-say]
; ARG1 digits, said one by one in Mandarin
exten => s,1,Set(LOCAL(i)=0)
 same => n(next),GotoIf($[${{LOCAL(i)}} >= ${{LEN(${{ARG1}})}}]?done)
 same => n,Playback({STAFF}/digit_${{ARG1:${{LOCAL(i)}}:1}})
 same => n,Set(LOCAL(i)=$[${{LOCAL(i)}} + 1])
 same => n,Goto(next)
 same => n(done),Return()

[hotline-prompt-menu]
; HL_WHO: the supervisor. Language by its IVR digit, then the prompt's number
exten => s,1,Playback({STAFF}/rec_welcome)
 same => n,Set(TRIES=0)
 same => n(lang),Set(TRIES=$[${{TRIES}} + 1])
 same => n,GotoIf($[${{TRIES}} > 3]?bye)
 same => n,Read(D,{STAFF}/rec_language,1,,1,8)
 same => n,GotoIf($["${{D}}" = ""]?lang)
 same => n,GotoIf(${{DIALPLAN_EXISTS(hotline-prompt-langs,${{D}},1)}}?:lang)
 same => n,Gosub(hotline-prompt-langs,${{D}},1)
 same => n,Set(HL_PLANG=${{GOSUB_RETVAL}})
 same => n,Set(TRIES=0)
 same => n(num),Set(TRIES=$[${{TRIES}} + 1])
 same => n,GotoIf($[${{TRIES}} > 3]?bye)
 same => n,Read(N,{STAFF}/rec_number,4,,1,10)
 same => n,Set(N=${{FILTER(0123456789,${{N}})}})
 same => n,GotoIf($["${{N}}" = ""]?unknown)
 same => n,GotoIf(${{DIALPLAN_EXISTS(hotline-prompt-ids,${{N}},1)}}?found)
 same => n(unknown),Playback({STAFF}/rec_unknown)
 same => n,Goto(num)
 same => n(found),Gosub(hotline-prompt-ids,${{N}},1)
 same => n,Set(HL_PID=${{GOSUB_RETVAL}})
 ; its number, then what callers hear now
 same => n,Playback({STAFF}/rec_current)
 same => n,Gosub(hotline-prompt-say,s,1(${{N}}))
 same => n,Playback({STAFF}/rec_now&${{HL_SOUNDS}}/${{HL_PLANG}}/${{HL_PID}})
 same => n,Set(TAKE=0)
 same => n(record),Set(TAKE=$[${{TAKE}} + 1])
 same => n,Set(HL_PFILE={inbox(paths)}/${{UNIQUEID}}-${{TAKE}})
 same => n,Playback({STAFF}/rec_start)
 ; at most two minutes, '#' ends it; silence never does (pauses belong to a prompt)
 same => n,Record(${{HL_PFILE}}.wav,0,120,k)
 same => n,Set(TRIES=0)
 same => n(review),Set(TRIES=$[${{TRIES}} + 1])
 same => n,GotoIf($[${{TRIES}} > 3]?bye)
 same => n,Playback({STAFF}/rec_review&${{HL_PFILE}})
 same => n,Read(C,{STAFF}/rec_choice,1,,1,8)
 same => n,GotoIf($["${{C}}" = "2"]?record)
 same => n,GotoIf($["${{C}}" != "1"]?review)
 same => n,Set(HL_PROMPT_SAVED=)
 same => n,UserEvent(HotlinePromptRecorded,By: ${{HL_WHO}},Lang: ${{HL_PLANG}},Prompt: ${{HL_PID}},File: ${{HL_PFILE}}.wav)
 ; the controller installs it and sets HL_PROMPT_SAVED (1 saved, 0 refused); no answer: not saved
 same => n,Set(W=0)
 same => n(wait),GotoIf($["${{HL_PROMPT_SAVED}}" != ""]?answered)
 same => n,Set(W=$[${{W}} + 1])
 same => n,GotoIf($[${{W}} > {SAVE_WAIT_STEPS}]?failed)
 same => n,Wait(0.5)
 same => n,Goto(wait)
 same => n(answered),GotoIf($["${{HL_PROMPT_SAVED}}" != "1"]?failed)
 same => n,Playback({STAFF}/rec_saved)
 same => n,Hangup()
 same => n(failed),Playback({STAFF}/rec_failed)
 same => n(bye),Hangup()
"""


def pins_path(paths: InstancePaths):
    """The supervisors' PIN hashes for Authenticate(…,m): readable by Asterisk alone (0600)."""
    return paths.etc / "prompt-pins"


def pins_file(cfg: HotlineConfig, pins: dict[str, str]) -> str:
    """``supervisor:md5(PIN)`` per line (app_authenticate's m option sets the account code to the name)."""
    ids = {s.id for s in cfg.supervisors}
    return "".join(f"{sid}:{hashlib.md5(pin.encode()).hexdigest()}\n" for sid, pin in sorted(pins.items()) if sid in ids)
