"""The follow-up visit (回访) survey the controller dials callers into (backoffice/followups.py)."""
from __future__ import annotations


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
