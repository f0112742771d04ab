"""Configuration for standard SIP phones as agent phones (baresip, linphone), from our config.

Any SIP phone works: it registers to Asterisk as the agent's SIP account (user = agent id, password
from .hotline/secrets.json) and the agent logs in through the API or desktop. These generators write
working files for the two Debian softphones we test with.
"""
from __future__ import annotations

from pathlib import Path

from core.config import HotlineConfig


def baresip_files(cfg: HotlineConfig, agent_id: str, password: str, listen_port: int,
                  play: Path | None = None, record_dir: Path | None = None) -> dict[str, str]:
    a = cfg.system.asterisk
    lines = [f"sip_listen {a.sip_bind}:{listen_port}",
             "module_path /usr/lib/baresip/modules",
             "module g711.so",
             "module_app account.so",
             "module_app menu.so"]
    if play is not None:  # headless: speak a WAV file instead of a microphone
        lines += ["module aufile.so", f"audio_source aufile,{play}", "audio_player aufile,/dev/null",
                  "audio_alert aufile,/dev/null"]
    if record_dir is not None:  # keep what the agent heard (sndfile: *-dec.wav per call)
        lines += ["module sndfile.so", f"snd_path {record_dir}"]
    account = (f"<sip:{agent_id}@{a.sip_bind}:{a.sip_port}>;auth_pass={password};"
               f"answermode=auto;regint=300;ptime=20;audio_codecs=PCMA,PCMU\n")
    return {"config": "\n".join(lines) + "\n", "accounts": account}


def linphone_rc(cfg: HotlineConfig, agent_id: str, password: str, listen_port: int) -> str:
    """A linphonerc for linphonec / linphone-daemon (auto-answer on)."""
    a = cfg.system.asterisk
    return f"""[sip]
sip_port={listen_port}
default_proxy=0

[auth_info_0]
username={agent_id}
passwd={password}
realm=hotline12348

[proxy_0]
reg_proxy=<sip:{a.sip_bind}:{a.sip_port}>
reg_identity="{agent_id}" <sip:{agent_id}@{a.sip_bind}>
reg_expires=300
reg_sendregister=1

[sound]
echocancellation=0

[misc]
auto_answer=1
"""
