"""Asterisk's small files: directories, modules, logging, RTP, music on hold, voicemail boxes, and
the fixed ones (CDR, indications, features, ConfBridge, and empty files that only silence errors)."""
from __future__ import annotations

from core.config import HotlineConfig
from core.paths import InstancePaths

from ..acl import TABLE, blocklist_path

from .common import HEADER

# Only what the platform uses is loaded: a smaller attack surface and a faster start.
MODULES = [
    # core plumbing
    "res_sorcery_config.so", "res_sorcery_memory.so", "res_sorcery_astdb.so", "res_timing_timerfd.so",
    "res_rtp_asterisk.so", "res_musiconhold.so", "pbx_config.so", "func_sorcery.so",
    # SIP (PJSIP) for the carrier trunk and agents' phones
    "res_pjproject.so", "res_pjsip.so", "res_pjsip_session.so", "chan_pjsip.so",
    "res_pjsip_authenticator_digest.so", "res_pjsip_endpoint_identifier_ip.so",
    "res_pjsip_endpoint_identifier_user.so", "res_pjsip_registrar.so", "res_pjsip_sdp_rtp.so",
    "res_pjsip_caller_id.so", "res_pjsip_dtmf_info.so", "res_pjsip_refer.so", "res_pjsip_nat.so",
    "res_pjsip_header_funcs.so", "res_pjsip_logger.so", "res_pjsip_rfc3326.so", "res_pjsip_pubsub.so",
    "res_pjsip_outbound_authenticator_digest.so", "func_pjsip_endpoint.so",
    # addresses refused after failed authentications: PJSIP ACLs Asterisk reads on every request from
    # the table the controller keeps (callcenter/asterisk/acl.py, sip_acl_files below)
    "res_config_sqlite3.so", "res_sorcery_realtime.so", "res_pjsip_acl.so",
    # SRTP for phones on TLS (media_encryption = sdes)
    "res_srtp.so",
    # bridging
    "bridge_simple.so", "bridge_native_rtp.so", "bridge_softmix.so", "bridge_holding.so",
    "bridge_builtin_features.so",
    # applications
    "app_queue.so", "app_playback.so", "app_read.so", "app_mixmonitor.so", "app_voicemail.so",
    "app_userevent.so", "app_stack.so", "app_dial.so", "app_echo.so", "app_verbose.so",
    "app_chanspy.so", "app_confbridge.so", "app_senddtmf.so", "app_exec.so", "app_originate.so", "app_db.so",
    "app_bridgeaddchan.so", "app_softhangup.so",
    # supervisors record IVR prompts by phone (confgen/prompt_recording.py)
    "app_record.so", "app_authenticate.so",
    # the desk's mute button (MUTEAUDIO(), set over AMI with Setvar: no `system` write class needed)
    "res_mutestream.so",
    # live transcription: an AudioSocket channel streams one speaker to the transcriber
    "res_audiosocket.so", "chan_audiosocket.so",
    # dialplan functions
    "func_channel.so", "func_strings.so", "func_logic.so", "func_callerid.so", "func_cdr.so",
    "func_dialplan.so", "func_global.so", "func_math.so", "func_hangupcause.so", "func_db.so",
    "func_sprintf.so",
    # codecs and file formats (prompts are 8 kHz WAV, recordings WAV)
    "codec_ulaw.so", "codec_alaw.so", "codec_a_mu.so", "codec_gsm.so", "codec_resample.so",
    "format_wav.so", "format_gsm.so", "format_pcm.so", "format_sln.so", "format_wav_gsm.so",
    # records kept by Asterisk itself, readable even if the controller was down
    "cdr_csv.so",
    # the desk's browser phone: SIP over secure WebSocket on Asterisk's HTTP server (http.conf)
    "res_http_websocket.so", "res_pjsip_transport_websocket.so",
    # several nodes: DEVICE_STATE(Custom:agent-<id>), an agent busy on another node (confgen/cluster.py)
    "func_devstate.so",
    # agents' phone states as AMI DeviceStateChange events: one per change, for the agents' view (and,
    # with several nodes, relayed to the others); QueueMemberStatus repeats each once per queue
    "res_manager_devicestate.so",
]


def asterisk_conf(paths: InstancePaths, moddir: str, systemname: str | None = None) -> str:
    i = paths.inner
    # a cluster node names itself: its unique and linked ids start with "<node>-", so calls of two
    # nodes sharing one database never get the same id (docs/scale-out.md)
    node = f"systemname = {systemname}\n" if systemname else ""
    return HEADER + f"""[directories]
astetcdir => {paths.etc}
astmoddir => {moddir}
astvarlibdir => {paths.lib}
astdbdir => {paths.lib}
astkeydir => {paths.lib}
astdatadir => /usr/share/asterisk
astagidir => /usr/share/asterisk/agi-bin
astspooldir => {paths.spool}
astrundir => {paths.run}
astlogdir => {paths.log}
astsbindir => /usr/sbin

[options]
documentation_language = en_US
; {i}: one instance of several sharing this rootfs
transmit_silence = yes
defaultlanguage = zh
{node}"""


def modules_conf(cfg: HotlineConfig) -> str:
    # the admin's asterisk.extra_modules after ours (or `load =` lines in custom/modules_custom.conf)
    extra = [m for m in cfg.system.asterisk.extra_modules if m not in MODULES]
    ours = MODULES
    return (HEADER + "[modules]\nautoload = no\n" + "".join(f"load = {m}\n" for m in ours)
            + ("; asterisk.extra_modules (config/hotline.yaml)\n" if extra else "")
            + "".join(f"load = {m}\n" for m in extra))


def logger_conf() -> str:
    return HEADER + "[general]\ndateformat = %F %T.%3q\n\n[logfiles]\nmessages.log => notice,warning,error,verbose(3)\nconsole => notice,warning,error\n"


def rtp_conf(cfg: HotlineConfig) -> str:
    a = cfg.system.asterisk
    return HEADER + f"[general]\nrtpstart = {a.rtp_start}\nrtpend = {a.rtp_end}\nstrictrtp = yes\n"

def voicemail_conf(cfg: HotlineConfig) -> str:
    lines = [HEADER, "[general]\nformat = wav\nmaxsecs = 180\nmaxsilence = 10\nattach = no\n"
                     "skipms = 3000\nmaxlogins = 3\n\n[hotline]\n"]
    for qid, names in [(c.id, c.names) for c in cfg.cities] + [(cfg.province.id, cfg.province.names)]:
        lines.append(f"{qid} => 0,{names.en} 12348\n")
    return "".join(lines)


def sip_acl_files(cfg: HotlineConfig, paths: InstancePaths) -> dict[str, str]:
    """PJSIP's ACL objects come from the blocklist table; a cluster node also reads the one ACL of
    pjsip.conf (its peers, confgen/pjsip.py). Sorcery realtime reads the table on each request;
    batch = 0 keeps res_config_sqlite3 out of a long transaction, in which it would not see the
    controller's new rows."""
    static = "acl = config,pjsip.conf,criteria=type=acl\n" if cfg.system.cluster.behind_edge else ""
    return {
        "sorcery.conf": HEADER + f"[acl]\n{static}acl = realtime,{TABLE}\n",
        "extconfig.conf": HEADER + f"[settings]\n{TABLE} => sqlite3,hotline,{TABLE}\n",
        "res_config_sqlite3.conf": HEADER + f"[hotline]\ndbfile = {blocklist_path(paths)}\nbatch = 0\n"
                                            "requirements = warn\n",
    }


def musiconhold_conf(paths: InstancePaths) -> str:
    return HEADER + f"[default]\nmode = files\ndirectory = {paths.moh}\nsort = alpha\n"


CDR_CONF = ("[general]\nenable = yes\nunanswered = yes\n\n[csv]\nusegmtime = no\nloguniqueid = yes\n"
            "loguserfield = yes\naccountlogs = no\n")

# present so Asterisk does not log errors about them; defaults are what we want
EMPTY_FILES = ("cel.conf", "acl.conf", "udptl.conf", "pjproject.conf", "ccss.conf")

INDICATIONS_CONF = ("[general]\ncountry=cn\n\n[cn]\ndescription = China\nringcadence = 1000,4000\n"
                    "dial = 450\nbusy = 450/350,0/350\nring = 450/1000,0/4000\n"
                    "congestion = 450/700,0/700\ncallwaiting = 450/400,0/4000\n")

# the desk's transfers (AMI Atxfer) use the attended-transfer feature; agents' phones may
# also dial them as DTMF codes (Queue option t lets the agent, never the caller, transfer)
FEATURES_CONF = "[general]\natxferabort = *3\natxfercomplete = *4\n\n[featuremap]\nblindxfer = #1\natxfer = *2\n"

CONFBRIDGE_CONF = "[general]\n"


def http_conf(cfg: HotlineConfig, paths: InstancePaths) -> str:
    """Asterisk's HTTP server, only for the browser phones' secure WebSocket (/ws). Its plain listener
    gets an ephemeral loopback port (port 0): nothing is served in the clear."""
    a = cfg.system.asterisk
    if a.wss_port is None:
        return HEADER + "[general]\nenabled = no\n"
    return HEADER + f"""[general]
enabled = yes
bindaddr = 127.0.0.1
bindport = 0
servername = 12348-hotline
tlsenable = yes
tlsbindaddr = {a.sip_bind}:{a.wss_port}
tlscertfile = {paths.keys}/asterisk.pem
tlsprivatekey = {paths.keys}/asterisk.key
"""
