"""manager.conf: the controller's AMI login, loopback only and least privilege."""
from __future__ import annotations

from core.config import HotlineConfig
from store.secrets import Secrets

from .common import HEADER

def manager_conf(cfg: HotlineConfig, secrets: Secrets) -> str:
    a = cfg.system.asterisk
    # Least privilege: events and actions the controller needs; no 'command' or 'system' write.
    # 'security' brings failed SIP authentications to callcenter/sipguard.py.
    return HEADER + f"""[general]
enabled = yes
port = {a.ami_port}
bindaddr = 127.0.0.1
displayconnects = no
timestampevents = yes
authtimeout = 10
authlimit = 20

[{secrets.ami_user}]
secret = {secrets.ami_secret}
deny = 0.0.0.0/0.0.0.0
permit = 127.0.0.1/255.255.255.255
read = call,agent,user,security
write = call,agent,originate,reporting
writetimeout = 5000
""" + event_filters(cfg)


def event_filters(cfg: HotlineConfig) -> str:
    """What the AMI session is not sent. Asterisk 22's advanced filters: the event's name is matched by
    its hash, where a legacy ``!Event: X`` filter ran a regex over the whole event text for every event
    and every filter (29 regexes per event before)."""
    out = [f"eventfilter(action(exclude),name({e})) =\n" for e in UNUSED_EVENTS]
    # The agents' state comes from their phone's DeviceStateChange: one event per change, where
    # QueueMemberStatus repeats it once per queue the agent is in (6 per call at 20 calls/s with two
    # queues each). Several nodes: QueueMemberStatus is kept, since app_queue's view there combines the
    # phone with what the other nodes relay (agents/service.py device_from).
    if not cfg.system.cluster.nodes:
        out.append("eventfilter(action(exclude),name(QueueMemberStatus)) =\n")
    # only phones' device states (PJSIP/...): not Queue: (one per queue and skill at every change), Local,
    # Custom: devices (the header's value is matched as Asterisk stores it: a leading space allowed for)
    out.append("eventfilter(action(exclude),name(DeviceStateChange),header(Device),method(regex)) = "
               "^ *([^P ]|P[^J])\n")
    return "".join(out)


# Events of the classes we read that the controller never looks at (calls.py, agents/service.py): not
# sent, not parsed. Read classes are the other half — Asterisk builds no event of a class nobody reads,
# so RTCP reports (reporting), DTMF and CDR events are not even made (bench/bench_load.py: Asterisk
# used 16 points of a core more at 20 calls/s with the controller connected, before this).
UNUSED_EVENTS = ("Newstate", "NewCallerid", "NewConnectedLine", "NewAccountCode", "DialBegin", "DialState",
                 "DialEnd", "ExtensionStatus", "HangupRequest", "SoftHangupRequest",
                 "MusicOnHoldStart", "MusicOnHoldStop", "LocalBridge", "LocalOptimizationBegin",
                 "LocalOptimizationEnd", "MixMonitorStart", "MixMonitorStop", "ChanSpyStart", "ChanSpyStop",
                 "BridgeCreate", "BridgeDestroy", "Hold", "Unhold", "VarSet", "Newexten", "RTCP",
                 "QueueCallerLeave",
                 # security events of every phone's registration: only the failures matter
                 "ChallengeSent", "SuccessfulAuth")

