"""The dialplan contract: the UserEvent names the generated dialplan emits and the channel variables
it keeps, which the call tracker and the controller read. One event per real change of a call (an IVR
step is not one: its path rides on the queue step and the call's end); the rest are variables, read once
at hangup (HotlineCallEnd). Both sides use these names: the tracker
and controller through the constants, the generator by checking its output against them at
generation time (callcenter/asterisk/confgen/__init__.py: generate), so the two cannot drift apart."""
from __future__ import annotations

from enum import StrEnum

TRUNK_CONTEXT = "hotline-trunk"     # where carrier calls enter the dialplan


class Ev(StrEnum):
    """UserEvent names (the event's ``UserEvent`` header)."""
    CALL = "HotlineCall"                          # a trunk call reached a known number: DID, city, area
    IVR_INVALID = "HotlineIVRInvalid"             # garbage DTMF at a menu
    QUEUE = "HotlineQueue"                        # a queue step: the queue, what the caller is told (Ahead,
                                                  # Minutes), the IVR path and routing facts; the first
                                                  # step's Routed (ms) is when routing was decided
    OVERFLOW = "HotlineOverflow"                  # the caller moves on to the next queue of the workflow
    INTERPRETER = "HotlineInterpreter"            # the interpreter leg: ringing, answered, left, failed
    VOICEMAIL = "HotlineVoicemail"                # the caller left a message: a callback task
    UNKNOWN_NUMBER = "HotlineUnknownNumber"       # a dialled number no city has
    TRANSFER = "HotlineTransfer"                  # a desk transfer's target
    HOLD = "HotlineHold"                          # hold on / the hold limit reached
    CALLBACK_REQUEST = "HotlineCallbackRequest"   # "press 5": a place-keeping callback asked for
    CALLBACK = "HotlineCallback"                  # the callback's placeholder reached an agent
    CALLBACK_DIAL = "HotlineCallbackDial"         # the caller is being dialled back
    CALLBACK_RESULT = "HotlineCallbackResult"     # done, retry or failed
    SURVEY = "HotlineSurvey"                      # one follow-up survey answer
    SURVEY_END = "HotlineSurveyEnd"               # the follow-up survey ended
    CALL_END = "HotlineCallEnd"                   # the caller's hangup handler: every fact of the call, once
    PROMPT_RECORDED = "HotlinePromptRecorded"     # a supervisor accepted a prompt recording by phone
    PROMPT_REFUSED = "HotlinePromptRefused"       # someone not allowed to record prompts tried
    EMERGENCY = "HotlineEmergency"                # 110/120 warm transfer leg: ringing, answered, left, failed


class Var(StrEnum):
    """Channel variables on the caller's channel (inherited with ``__`` where the dialplan sets them)."""
    DID = "HOTLINE_DID"
    CITY = "HOTLINE_CITY"
    AREA = "HOTLINE_AREA"
    LANG = "HOTLINE_LANG"
    IVR_PATH = "HOTLINE_IVR_PATH"
    SERVICE = "HOTLINE_SERVICE"
    QUEUE = "HOTLINE_QUEUE"
    REC = "HOTLINE_REC"
    OVERFLOW = "HOTLINE_OVERFLOW"
    START = "HOTLINE_START"
    QUEUED_AT = "HOTLINE_QUEUED_AT"
    ANSWERED_AT = "HOTLINE_ANSWERED_AT"
    AGENT = "HOTLINE_AGENT"
    GREEN = "HOTLINE_GREEN"
    OPEN = "HOTLINE_OPEN"
    TICKET = "HOTLINE_TICKET"                     # set by the controller: the call's ticket id
    # the dialplan's own bookkeeping, named here so the generator's check knows them
    CALLBACK = "HOTLINE_CALLBACK"
    CALLER_CHAN = "HOTLINE_CALLER_CHAN"
    INTERPRETER = "HOTLINE_INTERPRETER"
    STEP_AT = "HOTLINE_STEP_AT"
    TARGET = "HOTLINE_TARGET"
    UNHELD = "HOTLINE_UNHELD"


class Hook(StrEnum):
    """The admin's dialplan hooks (docs/operations.md): contexts the generated dialplan calls with
    Gosub(<hook>,s,1) if the admin defined them in custom/extensions_custom.conf, and skips otherwise.
    A hook reads the call's facts from the HOTLINE_* variables above and must end in Return()."""
    INBOUND = "hotline-hook-inbound"              # every trunk call, after HotlineCall, before the IVR
    VOICEMAIL = "hotline-hook-voicemail"          # no queue answered: before the voicemail prompt
    HANGUP = "hotline-hook-hangup"                # the caller's hangup handler, after the CDR facts


# what a restarted controller reads back from each live caller channel (Getvar) to rebuild a call
RESYNC_VARS = (Var.DID, Var.CITY, Var.AREA, Var.LANG, Var.IVR_PATH, Var.SERVICE, Var.QUEUE, Var.REC, Var.OVERFLOW,
               Var.START, Var.QUEUED_AT, Var.ANSWERED_AT, Var.AGENT, Var.GREEN, Var.OPEN, "CALLERID(num)")
