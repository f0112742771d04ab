"""Configuration for standard SIP phones as agent phones (baresip, linphone), from our config.

Any SIP phone works: it registers to Asterisk as the agent's SIP account (user = agent id, password
from .hotline/secrets.json) and the agent logs in through the API or desktop. These generators write
working files for the two Debian softphones we test with.
"""
from __future__ import annotations

from pathlib import Path

from core.config import HotlineConfig


def baresip_files(cfg: HotlineConfig, agent_id: str, password: str, listen_port: int,
                  play: Path | None = None, record_dir: Path | None = None, ca: Path | None = None) -> dict[str, str]:
    """With ``ca`` (phones.transport tls): SIP over TLS to Asterisk's TLS port and SRTP or no call."""
    a = cfg.system.asterisk
    lines = [f"sip_listen {a.sip_bind}:{listen_port}",
             "module_path /usr/lib/baresip/modules",
             "module g711.so",
             "module_app account.so",
             "module_app menu.so"]
    if ca is not None:
        # sip_verify_server: baresip 1.1+ checks Asterisk's certificate against sip_cafile (1.0 ignores it)
        lines += [f"sip_cafile {ca}", "sip_verify_server yes", "module srtp.so"]
    if play is not None:  # headless: speak a WAV file instead of a microphone
        lines += ["module aufile.so", f"audio_source aufile,{play}", "audio_player aufile,/dev/null",
                  "audio_alert aufile,/dev/null"]
    if record_dir is not None:  # keep what the agent heard (sndfile: *-dec.wav per call)
        lines += ["module sndfile.so", f"snd_path {record_dir}"]
    server = f"{a.sip_bind}:{a.sip_port}" if ca is None else f"{a.sip_bind}:{a.tls_port};transport=tls"
    account = (f"<sip:{agent_id}@{server}>;auth_pass={password};"
               f"answermode=auto;regint=300;ptime=20;audio_codecs=PCMA,PCMU"
               f"{';mediaenc=srtp-mand' if ca is not None else ''}\n")
    return {"config": "\n".join(lines) + "\n", "accounts": account}


def linphone_rc(cfg: HotlineConfig, agent_id: str, password: str, listen_port: int, ca: Path | None = None) -> str:
    """A linphonerc for linphonec / linphone-daemon (auto-answer on); with ``ca``, SIP over TLS
    (Asterisk's certificate checked, name included) and mandatory SRTP."""
    a = cfg.system.asterisk
    if ca is None:
        sip, proxy = f"sip_port={listen_port}\n", f"<sip:{a.sip_bind}:{a.sip_port}>"
    else:
        sip = (f"sip_port=-1\nsip_tcp_port=-1\nsip_tls_port={listen_port}\nroot_ca={ca}\nverify_server_certs=1\n"
               "verify_server_cn=1\nmedia_encryption=srtp\nmedia_encryption_mandatory=1\n")
        proxy = f"<sip:{a.sip_bind}:{a.tls_port};transport=tls>"
    return f"""[sip]
{sip}default_proxy=0

[auth_info_0]
username={agent_id}
passwd={password}
realm=hotline12348

[proxy_0]
reg_proxy={proxy}
reg_identity="{agent_id}" <sip:{agent_id}@{a.sip_bind}>
reg_expires=300
reg_sendregister=1

[sound]
echocancellation=0

[misc]
auto_answer=1
"""
