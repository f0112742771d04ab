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
""" + "".join(f"eventfilter = !Event: {e}\n" for e in UNUSED_EVENTS
              # several nodes: agents' phone states are relayed to the other nodes (callcenter/cluster.py)
              if not (e == "DeviceStateChange" and cfg.system.cluster.nodes))


# Events of the classes we read that the controller never looks at (calls.py, agents/service.py): not
# sent, not parsed. Read classes are the other half — Asterisk builds no event of a class nobody reads,
# so RTCP reports (reporting), DTMF and CDR events are not even made (bench/bench_load.py: Asterisk
# used 16 points of a core more at 20 calls/s with the controller connected, before this).
UNUSED_EVENTS = ("Newstate", "NewCallerid", "NewConnectedLine", "NewAccountCode", "DialBegin", "DialState",
                 "DialEnd", "DeviceStateChange", "ExtensionStatus", "HangupRequest", "SoftHangupRequest",
                 "MusicOnHoldStart", "MusicOnHoldStop", "LocalBridge", "LocalOptimizationBegin",
                 "LocalOptimizationEnd", "MixMonitorStart", "MixMonitorStop", "ChanSpyStart", "ChanSpyStop",
                 "BridgeCreate", "BridgeDestroy", "Hold", "Unhold", "VarSet", "Newexten", "RTCP",
                 # security events of every phone's registration: only the failures matter
                 "ChallengeSent", "SuccessfulAuth")

