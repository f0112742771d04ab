"""queues.conf: one app_queue queue per city, skill and pool the workflows use."""
from __future__ import annotations

from core import workflow
from core.config import HotlineConfig

from .common import HEADER

def queues_conf(cfg: HotlineConfig) -> str:
    q = cfg.system.queues
    cb = q.callback
    # the callback offer, in the caller's language (sounds/<lang>/hl-<instance> links to our prompts)
    offer = (f"context = hotline-queue-keys\nperiodic-announce = hl-{cfg.system.asterisk.instance}/callback_offer\n"
             f"periodic-announce-frequency = {cb.offer_every_seconds}\nperiodic-announce-startdelay = 10\n"
             if cfg.system.trunk.outbound else "")
    out = [HEADER, """[general]
; dynamic members survive an Asterisk restart (kept in astdb)
persistentmembers = yes
; the caller's channel gets MEMBERNAME, QEHOLDTIME... when connected (screen-pop, records)
; wrap-up counts across queues: an agent in several queues is not offered a call from another
; queue in the middle of wrap-up (with "no", each queue keeps its own last-call time)
shared_lastcall = yes
log_membername_as_agent = yes
"""]
    for qid in workflow.all_queues(cfg):
        out.append(f"""
[{qid}]
strategy = {q.strategy}
timeout = {q.ring_seconds}
retry = 2
wrapuptime = {q.wrapup_seconds}
maxlen = {q.max_callers}
ringinuse = no
autopause = no
autofill = yes
announce-frequency = 0
setinterfacevar = yes
setqueueentryvar = yes
setqueuevar = yes
reportholdtime = no
timeoutpriority = app
musicclass = default
{offer}""")
        if qid.endswith(workflow.SUPERVISOR_SUFFIX):
            # static members: the city supervisors' phones (unregistered phones count as not logged in,
            # so the dialplan skips the queue at once when none is reachable)
            city = qid.removesuffix(workflow.SUPERVISOR_SUFFIX)
            out += [f"member => PJSIP/{sid},0,{sid},PJSIP/{sid}\n" for sid in workflow.supervisors_of(city, cfg)]
    return "".join(out)
