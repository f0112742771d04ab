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
disabledevents = {",".join(disabled_events(cfg))}

[{secrets.ami_user}]
secret = {secrets.ami_secret}
deny = 0.0.0.0/0.0.0.0
permit = 127.0.0.1/255.255.255.255
read = call,agent,user,security
write = call,agent,originate,reporting
writetimeout = 5000
""" + event_filters(cfg)


def disabled_events(cfg: HotlineConfig) -> list[str]:
    """Events no AMI session is sent, named once for all of Asterisk (``disabledevents``): it still
    builds their channel snapshot text, but no longer formats, queues and hands each one to every
    session's thread to be filtered out there (Newexten and VarSet alone come once per dialplan step).
    The controller is the only AMI client; nothing reads these."""
    # The agents' state comes from their phone's DeviceStateChange: one event per change, where
    # QueueMemberStatus repeats it once per queue the agent is in (6 per call at 20 calls/s with two
    # queues each). Several nodes: QueueMemberStatus is kept, since app_queue's view there combines the
    # phone with what the other nodes relay (agents/service.py device_from).
    return list(UNUSED_EVENTS) + ([] if cfg.system.cluster.nodes else ["QueueMemberStatus"])


def event_filters(cfg: HotlineConfig) -> str:
    """What the controller's session is not sent of the events that exist: only phones' device states
    (PJSIP/...), not Queue: (one per queue and skill at every change), Local or Custom: devices. Asterisk
    22's advanced filter: the name is matched by its hash, the header's value (as Asterisk stores it: a
    leading space allowed for) by a regex only for DeviceStateChange."""
    return ("eventfilter(action(exclude),name(DeviceStateChange),header(Device),method(regex)) = "
            "^ *([^P ]|P[^J])\n")


# Events the controller never looks at (calls.py, agents/service.py): disabled for every session. The
# session's read classes do not spare Asterisk any work: it builds every event for any connected session
# and checks a session's classes only when sending (main/manager.c), so the list names each one.
UNUSED_EVENTS = ("Newstate", "NewCallerid", "NewConnectedLine", "NewAccountCode", "DialBegin", "DialState",
                 "DialEnd", "ExtensionStatus", "HangupRequest", "SoftHangupRequest",
                 "MusicOnHoldStart", "MusicOnHoldStop", "LocalBridge", "LocalOptimizationBegin",
                 "LocalOptimizationEnd", "MixMonitorStart", "MixMonitorStop", "ChanSpyStart", "ChanSpyStop",
                 "BridgeCreate", "BridgeDestroy", "Hold", "Unhold", "VarSet", "Newexten",
                 # of classes the controller does not read, built all the same for its session
                 "RTCPSent", "RTCPReceived", "DTMFBegin", "DTMFEnd", "Cdr",
                 "QueueCallerLeave",
                 # security events of every phone's registration: only the failures matter
                 "ChallengeSent", "SuccessfulAuth")

