"""config/hotline.yaml: this node's settings (Asterisk, trunk, controller, database, Redis, queues,
transcription, interop, federation, wallboard)."""
from __future__ import annotations

import ipaddress
import os
import re
from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, field_validator, model_validator

from core.config.base import AreaCode, Ident, Strict


class Node(Strict):
    name: str
    province: str


def _cpu_text(cores: set[int]) -> str:
    return "cores " + ",".join(map(str, sorted(cores)))


class AsteriskSettings(Strict):
    rootfs: Path
    instance: Ident
    sip_bind: str = "127.0.0.1"
    sip_port: int = Field(5060, ge=1, le=65535)
    ami_port: int = Field(5038, ge=1, le=65535)
    rtp_start: int = Field(10000, ge=1024, le=65535)
    rtp_end: int = Field(10999, ge=1024, le=65535)
    # SIP over TLS (agents' phones, and the trunk if trunk.transport is tls); none = no TLS transport
    tls_port: int | None = Field(None, ge=1, le=65535)
    # names (DNS or IP) phones reach Asterisk by, besides sip_bind, 127.0.0.1 and localhost: all go into
    # the server certificate `hotline setup` signs with the node's own CA
    tls_names: list[Annotated[str, Field(pattern=r"^[A-Za-z0-9.:\-]+$")]] = []
    # the admin's modules, loaded after the platform's list (which loads nothing else): file names
    extra_modules: list[str] = []
    # the Debian mirror debootstrap builds the rootfs from; none = debootstrap's default. A dated
    # snapshot (snapshot.debian.org/archive/debian/<date>/) pins the Asterisk a site has tested
    debian_mirror: str | None = None
    # SIP over secure WebSocket for the desk's browser phone (Asterisk's HTTP server with TLS, the same
    # certificate as tls_port); none = no browser phones
    wss_port: int | None = Field(None, ge=1, le=65535)
    # which of Asterisk's task queues, over its high-water mark, make PJSIP ignore new SIP requests until
    # they drain: Asterisk's default "global" counts every queue, and at a peak the queue of channel events
    # (stasis) passes it for a moment, when new callers' INVITEs went unanswered for up to 15 s (their
    # retransmissions: docs/performance.md). "pjsip_only": PJSIP's own queues still protect it.
    overload_trigger: Literal["global", "pjsip_only", "none"] = "pjsip_only"
    # a Ping on the controller's AMI event session this often (ms; 0 = none). Asterisk wakes a session's
    # thread with a signal when it queues an event; a signal landing just before the thread sleeps is
    # lost, and the event waits for the next one (seconds, when calls are few). Any input from us wakes
    # the thread too: this bounds that wait (docs/performance.md, "lost wake-ups")
    ami_nudge_ms: int = Field(50, ge=0, le=10_000)
    # the cores Asterisk runs on alone (Linux CPU numbers); the controller, transcriber and interop
    # daemons keep off them. At a busy peak on shared cores, the one Asterisk thread that writes the AMI
    # events waited seconds for a core, or for a lock held by a thread that did; with a core of its own
    # no event left Asterisk late (docs/performance.md, "Who holds the late events"). none = every
    # process on every core
    cpus: list[Annotated[int, Field(ge=0, le=4095)]] | None = None

    @field_validator("sip_bind")
    @classmethod
    def ip(cls, v: str) -> str:
        ipaddress.ip_address(v)
        return v

    @field_validator("extra_modules")
    @classmethod
    def module_files(cls, v: list[str]) -> list[str]:
        for i, name in enumerate(v):
            if not re.fullmatch(r"(app|bridge|cdr|cel|chan|codec|format|func|pbx|res|test)_[a-z0-9_]+\.so", name):
                raise ValueError(f"[{i}] {name!r} is not an Asterisk module file name (like res_snmp.so: "
                                 "app_, bridge_, cdr_, cel_, chan_, codec_, format_, func_, pbx_, res_ or test_, "
                                 "lower case, ending in .so)")
            if v.index(name) != i:
                raise ValueError(f"[{i}] {name!r} is listed twice")
        return v

    @field_validator("cpus")
    @classmethod
    def cpu_list(cls, v: list[int] | None) -> list[int] | None:
        if v is not None:
            if not v:
                raise ValueError("an empty list leaves Asterisk no core: leave cpus out to use every core")
            twice = sorted({c for c in v if v.count(c) > 1})
            if twice:
                raise ValueError(f"core {twice[0]} is listed twice")
        return v

    def daemon_cpus(self, available: set[int]) -> set[int] | None:
        """The cores our daemons may use on a machine offering ``available``: every one but Asterisk's;
        None when Asterisk has no cores of its own. ValueError when a listed core is not available here
        or when Asterisk would take them all."""
        if self.cpus is None:
            return None
        missing = sorted(set(self.cpus) - available)
        if missing:
            raise ValueError(f"asterisk.cpus: core {missing[0]} is not among this machine's "
                             f"{_cpu_text(available)}")
        rest = available - set(self.cpus)
        if not rest:
            raise ValueError(f"asterisk.cpus {_cpu_text(set(self.cpus))} takes every core of this machine: "
                             "leave at least one to the controller and the other daemons")
        return rest

    @model_validator(mode="after")
    def rtp_range(self) -> "AsteriskSettings":
        if self.rtp_end - self.rtp_start < 20:
            raise ValueError(f"rtp_end ({self.rtp_end}) must be at least rtp_start+20 ({self.rtp_start + 20})")
        return self

    @model_validator(mode="after")
    def tls_port_free(self) -> "AsteriskSettings":
        # both TCP: the TLS listener and AMI cannot share a port
        if self.tls_port is not None and self.tls_port == self.ami_port:
            raise ValueError(f"tls_port ({self.tls_port}) is also ami_port")
        return self


class Trunk(Strict):
    name: Ident
    match: list[str] = Field(min_length=1)
    codecs: list[str] = Field(min_length=1)
    # where outbound calls (callbacks) go: the carrier's SIP address; none = no callbacks
    outbound: Annotated[str, Field(pattern=r"^sip:[A-Za-z0-9.\-]+(:[0-9]{1,5})?$")] | None = None
    # tls: Asterisk calls the carrier over TLS (on asterisk.tls_port's transport) and checks its
    # certificate against tls_ca_file and the name in `outbound`; the carrier calls in on tls_port
    transport: Literal["udp", "tls"] = "udp"
    # the carrier's CA bundle (PEM); none = the node's own CA (a carrier whose certificate we signed)
    tls_ca_file: str | None = None
    tls_verify_server: bool = True

    @field_validator("match")
    @classmethod
    def networks(cls, v: list[str]) -> list[str]:
        for net in v:
            ipaddress.ip_network(net, strict=False)
        return v

    @field_validator("codecs")
    @classmethod
    def codecs_known(cls, v: list[str]) -> list[str]:
        bad = [c for c in v if c not in ("alaw", "ulaw", "g722", "gsm", "opus")]
        if bad:
            raise ValueError(f"unsupported codecs {bad}")
        return v


class FollowUpSettings(Strict):
    """Follow-up visits (回访) after a ticket with follow_up is closed."""
    enabled: bool = True
    delay_minutes: float = Field(24 * 60, ge=0, le=30 * 24 * 60)   # after closing
    calling_hours: str = "09:00-20:00"                              # local time; never outside (quiet hours)
    attempts: int = Field(3, ge=1, le=10)
    retry_minutes: float = Field(120, ge=0.05, le=7 * 24 * 60)
    ring_seconds: int = Field(30, ge=5, le=120)
    survey_seconds: int = Field(120, ge=20, le=600)                 # an answered survey ends within this

    @field_validator("calling_hours")
    @classmethod
    def span(cls, v: str) -> str:
        from core.schedule import parse_span
        parse_span(v)
        return v


class ControllerSettings(Strict):
    http_host: str = "127.0.0.1"
    http_port: int = Field(8348, ge=1, le=65535)
    rota_interval_seconds: float = Field(30, ge=0.2, le=3600)   # rotas and scheduled callbacks
    rotas_enabled: bool = True
    session_idle_minutes: float = Field(30, gt=0, le=24 * 60)     # desk sessions end after this idle time
    session_max_hours: float = Field(12, gt=0, le=7 * 24)         # ... and after this long in any case
    hold_limit_seconds: int = Field(300, ge=10, le=3600)          # a held caller goes back to the queue after this
    # how often the calls followed are checked against Asterisk's channels: a call whose Hangup event
    # never reached us is closed (from the CDR) after two checks that do not list it
    reconcile_seconds: float = Field(60, ge=1, le=3600)
    follow_up: FollowUpSettings = FollowUpSettings()
    # reverse proxies in front of the HTTP API (addresses or networks): only from these is the client's
    # address read from X-Forwarded-For (dashboard/auth.py client_address); none by default
    trusted_proxies: list[str] = []

    @field_validator("trusted_proxies")
    @classmethod
    def proxies(cls, v: list[str]) -> list[str]:
        for entry in v:
            try:
                net = ipaddress.ip_network(entry)
            except ValueError as e:
                raise ValueError(f"trusted_proxies: {entry!r} is not an IP address or network ({e})") from None
            if net.prefixlen == 0:
                raise ValueError(f"trusted_proxies: {entry!r} would trust every client's X-Forwarded-For")
        return v


class Database(Strict):
    url: str

    @field_validator("url")
    @classmethod
    def scheme(cls, v: str) -> str:
        if not v.startswith(("sqlite", "postgresql")):
            raise ValueError(f"database url must be sqlite:/// or postgresql+psycopg://, got {v!r}")
        return v


class RedisSettings(Strict):
    url: str | None = "redis://127.0.0.1:6379/0"
    # keys and channels start with "<prefix>:", and the install's Redis ACL user is named after it: no
    # glob characters or spaces, which would widen or break its ACL rules
    prefix: str = Field("hotline", pattern=r"^[A-Za-z0-9_.-]{1,64}$")


class CallbackSettings(Strict):
    key: Annotated[str, Field(pattern=r"^[0-9]$")] = "5"   # pressed while waiting in a queue
    offer_every_seconds: int = Field(30, ge=10, le=600)   # how often the offer is announced
    attempts: int = Field(3, ge=1, le=10)
    retry_seconds: int = Field(120, ge=5, le=3600)
    ring_seconds: int = Field(30, ge=5, le=120)


class AnnounceSettings(Strict):
    # the handle time the wait estimate assumes until the controller has learnt it from history
    aht_seconds: int = Field(420, ge=30, le=3600)


class QueueSettings(Strict):
    strategy: str = "rrmemory"
    wrapup_seconds: int = Field(5, ge=0, le=600)
    ring_seconds: int = Field(15, ge=5, le=120)
    max_callers: int = Field(50, ge=1, le=1000)
    callback: CallbackSettings = CallbackSettings()
    announce: AnnounceSettings = AnnounceSettings()

    @field_validator("strategy")
    @classmethod
    def strategy_known(cls, v: str) -> str:
        known = ("ringall", "leastrecent", "fewestcalls", "random", "rrmemory", "linear", "wrandom", "rrordered")
        if v not in known:
            raise ValueError(f"unknown strategy {v!r}; app_queue knows {', '.join(known)}")
        return v


# Sizing of live transcription from the cores (bench/bench_vosk.py measures both figures): one live
# stream with a warm recogniser costs ~0.07 core on the 2-core reference VM (0.1 with partials, finals
# and bursts), and live transcription may take 60 % of the cores: Asterisk, the controller and the
# post-call jobs keep the rest.
LIVE_STREAM_CORES = 0.1
LIVE_CORES_SHARE = 0.6


def usable_cores() -> float:
    """The cores this process may run on: its CPU affinity, capped by a cgroup CPU quota if one is set."""
    try:
        cores = float(len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        cores = float(os.cpu_count() or 1)
    try:   # containers: "max 100000" (no quota) or "<quota> <period>"
        quota, period = Path("/sys/fs/cgroup/cpu.max").read_text().split()[:2]
        if quota != "max" and float(period) > 0:
            cores = min(cores, max(0.5, float(quota) / float(period)))
    except (OSError, ValueError):
        pass
    return cores


def live_calls_for(cores: float, stream_cores: float = LIVE_STREAM_CORES, share: float = LIVE_CORES_SHARE) -> int:
    """Calls (two streams each) live transcription holds on ``cores``: never fewer than one."""
    streams = int(cores * share / stream_cores + 1e-6)
    return max(1, streams // 2)


class LiveTranscription(Strict):
    enabled: bool = True
    host: str = "127.0.0.1"
    port: int = Field(9092, ge=1, le=65535)
    partial_every_ms: int = Field(300, ge=50, le=5000)
    # trailing silence that ends a live utterance (its final text): the models ship 0.5 s when the
    # decoder is confident, else 1 or 2 s; live text uses at most this (the decoder adds ~0.4 s, the
    # 200 ms chunks up to 0.2: 0.3 keeps final text within ~1 s of speech). Post-call keeps the model's.
    # The same pause, told by the audio's level, ends it too (recognize.PauseDetector): a pause's line
    # noise the model decodes as neither words nor silence does not hold it up.
    endpoint_silence_ms: int = Field(300, ge=100, le=5000)
    # the endpointer's safety net: a live partial text unchanged this long (in audio) is made final
    # (a pause's noise the model decodes as neither words nor silence otherwise ends nothing until
    # the caller speaks again). Checked when a partial is worked out, every partial_every_ms.
    settle_ms: int = Field(800, ge=200, le=10000)
    # calls transcribed live at once (two streams each); beyond it a call gets its post-call
    # transcript only. "auto": sized at start from the cores (live_calls_for); a number wins.
    max_calls: int | Literal["auto"] = "auto"

    @field_validator("max_calls", mode="before")
    @classmethod
    def calls_or_auto(cls, v):
        if v == "auto" or v is None:
            return "auto"
        if isinstance(v, str) and v.strip().isdigit():     # from an environment override
            v = int(v)
        if isinstance(v, bool) or not isinstance(v, int):
            raise ValueError(f"{v!r} is neither a number of calls (0-1000) nor 'auto' (sized from the cores)")
        if not 0 <= v <= 1000:
            raise ValueError(f"{v} calls is out of range: 0-1000, or 'auto' (sized from the cores)")
        return v

    def calls(self, cores: float | None = None) -> int:
        """The live limit in force: the configured number, or what ``cores`` (default: this machine's) hold."""
        if self.max_calls != "auto":
            return self.max_calls
        return live_calls_for(usable_cores() if cores is None else cores)


class Retention(Strict):
    recordings_days: int = Field(180, ge=1, le=3650)
    transcripts_days: int = Field(1095, ge=1, le=36500)


class MetricsEndpoint(Strict):
    """A daemon's own Prometheus /metrics (unauthenticated: keep it on loopback); port none = off."""
    host: str = "127.0.0.1"
    port: int | None = Field(None, ge=1, le=65535)


class TranscriptionSettings(Strict):
    enabled: bool = True
    metrics: MetricsEndpoint = MetricsEndpoint(port=9093)
    models: dict[str, list[str]] = {}
    # where `hotline models install` unpacks models and records which one serves each language
    # (languages.json there); those come before the candidates above. Default: <state_dir>/models
    models_dir: str = ""
    workers: int = Field(2, ge=1, le=64)
    # CPU priority (Unix nice, 0-19) of the transcriber: recognition is the heaviest work on the box and
    # never urgent; with the cores busy, Asterisk's calls and the controller go first
    nice: int = Field(10, ge=0, le=19)
    # jemalloc: run on libjemalloc when it is installed (Vosk's decoder spends ~20 % of a live stream in
    # glibc's malloc; transcription/allocator.py); system: the C library's malloc
    allocator: Literal["jemalloc", "system"] = "jemalloc"
    lease_seconds: float = Field(60, ge=1, le=3600)
    max_attempts: int = Field(3, ge=1, le=20)
    retry_seconds: float = Field(30, ge=0.1, le=86400)
    live: LiveTranscription = LiveTranscription()
    retention: Retention = Retention()
    keywords_file: str = "keywords.yaml"   # relative to the config directory, or absolute


class InteropSettings(Strict):
    """Delivery of the partner outbox (`hotline interop`)."""
    enabled: bool = True
    metrics: MetricsEndpoint = MetricsEndpoint(port=9094)
    poll_seconds: float = Field(0.5, ge=0.05, le=60)
    lease_seconds: float = Field(30, ge=1, le=3600)     # a message whose worker died is sent again after this
    timeout_seconds: float = Field(10, ge=0.5, le=120)  # per request
    concurrency: int = Field(8, ge=1, le=200)
    max_attempts: int = Field(20, ge=1, le=1000)        # then a dead letter (alert; `hotline outbox retry`)
    backoff_seconds: float = Field(1, ge=0.01, le=3600)
    backoff_max_seconds: float = Field(300, ge=0.01, le=86400)
    # this deployment's partner addresses, overriding config/partners.yaml: {partner: {city|default: url}}
    endpoints: dict[str, dict[str, str]] = {}
    # ... and their SIP trunks for warm transfers: {partner: {city|default: sip uri}}
    sip: dict[str, dict[str, str]] = {}


class FederationSettings(Strict):
    """One province, one or many deployments: a city node reports to the command-center node."""
    mode: Literal["standalone", "city", "command"] = "standalone"
    command_center_url: str = ""           # city: the command-center node's base URL
    report_seconds: float = Field(2, ge=0.2, le=300)
    stale_seconds: float = Field(10, ge=1, le=3600)   # command: a node not heard from this long is stale
    cities: list[str] = []                 # city: the cities this node serves (default: all configured)

    @model_validator(mode="after")
    def city_needs_url(self):
        if self.mode == "city" and not self.command_center_url.startswith(("http://", "https://")):
            raise ValueError("federation.command_center_url: a city node needs the command center's http(s) URL")
        return self


class AlarmThresholds(Strict):
    service_level_target: float = Field(0.8, ge=0, le=1)     # alarm below this ...
    min_calls_for_service_level: int = Field(5, ge=1)        # ... once this many calls were queued today
    longest_wait_seconds: float = Field(120, ge=1)           # alarm when a caller waits longer
    no_agent_when_open: bool = True                          # alarm when the city is open and nobody is logged in


class WallboardSettings(Strict):
    """KPI definitions (core/kpi.py, docs/kpis.md) and alarm thresholds, per city if needed."""
    service_level_seconds: float = Field(20, ge=1, le=600)
    short_abandon_seconds: float = Field(5, ge=0, le=120)
    exclude_short_abandons: bool = True
    alarm_interval_seconds: float = Field(5, ge=0.2, le=600)
    thresholds: AlarmThresholds = AlarmThresholds()
    city_thresholds: dict[str, AlarmThresholds] = {}


class NumberingPlan(Strict):
    """The numbers callbacks and follow-up surveys may dial (core/numbering.py decides; a toll-fraud
    guard): Chinese mobiles (1[3-9] and 11 digits) and fixed lines (0 + area code + a local number).
    Nothing else: no international, premium, service or short numbers."""
    mobile: bool = True
    fixed_lines: bool = True
    # fixed lines of these area codes only; none = the configured cities' (config/cities.yaml)
    area_codes: list[AreaCode] | None = None
    subscriber_digits_min: int = Field(7, ge=7, le=8)    # a local number after the area code
    subscriber_digits_max: int = Field(8, ge=7, le=8)

    @field_validator("area_codes")
    @classmethod
    def unique(cls, v: list[str] | None) -> list[str] | None:
        dup = sorted({c for c in v or [] if (v or []).count(c) > 1})
        if dup:
            raise ValueError(f"area codes listed twice: {dup}")
        return v

    @model_validator(mode="after")
    def digits(self) -> "NumberingPlan":
        if self.subscriber_digits_min > self.subscriber_digits_max:
            raise ValueError(f"subscriber_digits_min ({self.subscriber_digits_min}) is more than "
                             f"subscriber_digits_max ({self.subscriber_digits_max})")
        return self


class PrivacySettings(Strict):
    """Personal data over time (PIPL): caller numbers in rows settled (call ended, ticket closed,
    survey done, ...) and untouched for this many days are replaced by their keyed hash (core/privacy.py),
    checked every ``purge_interval_minutes`` by the controller and on demand (`hotline privacy purge`)."""
    caller_number_retention_days: int = Field(365, ge=1, le=36500)
    purge_interval_minutes: float = Field(60, ge=0.01, le=1440)   # below a minute: tests


class SipGuardSettings(Strict):
    """Failed SIP authentications (wrong password, unknown account) per source address: after
    ``max_failures`` within ``window_seconds`` the address is refused (403) for ``block_seconds``.
    The trunk's networks and ``exempt`` ones are never blocked, only logged."""
    max_failures: int = Field(10, ge=1, le=10_000)
    window_seconds: float = Field(300, ge=1, le=86_400)
    block_seconds: float = Field(900, ge=1, le=30 * 86_400)
    exempt: list[str] = []

    @field_validator("exempt")
    @classmethod
    def networks(cls, v: list[str]) -> list[str]:
        for net in v:
            try:
                ipaddress.ip_network(net, strict=False)
            except ValueError as e:
                raise ValueError(f"sip_guard.exempt: {net!r} is not an IP address or network ({e})") from None
        return v


class AuditSettings(Strict):
    """The audit log (store/auth.py AuditLog): how long rows are kept, and how refusals are folded."""
    retention_days: int = Field(365, le=3650)
    # refusals (no login needed to cause them) are one row per action, source address and minute; past
    # this many sources in one minute the rest share one row, so that many addresses cannot grow it either
    refusal_sources_per_minute: int = Field(1000, ge=10, le=100_000)

    @field_validator("retention_days")
    @classmethod
    def six_months(cls, v: int) -> int:
        if v < 180:   # the Cybersecurity Law (网络安全法 art. 21): network logs are kept six months at least
            raise ValueError(f"{v} days is too short: audit rows are kept at least 180 days (网络安全法 art. 21)")
        return v


class Phones(Strict):
    """Agents', supervisors' and SIP interpreters' phones. tls: they register and call over SIP/TLS
    (asterisk.tls_port, the node's CA) with SRTP media (SDES), and a call without SRTP is refused;
    udp: plain SIP and RTP (a lab on loopback)."""
    transport: Literal["udp", "tls"] = "udp"
    # agents whose phone is the desk's browser phone (WebRTC over asterisk.wss_port) instead of a SIP
    # phone: their one SIP account becomes a WebRTC endpoint, so only the browser can take their calls
    browser: list[Ident] = []


class ClusterNode(Strict):
    """One Asterisk media node with its own controller (docs/scale-out.md). In the lab every node has
    its own loopback address; on separate hosts, each host's address."""
    name: Ident
    address: Annotated[str, Field(pattern=r"^[A-Za-z0-9.:\-]+$")]
    sip_port: int = Field(5060, ge=1, le=65535)
    ami_port: int = Field(5038, ge=1, le=65535)
    http_port: int = Field(8348, ge=1, le=65535)
    cities: list[str] = []        # the cities this node serves first; every other node is their standby


class KamailioSettings(Strict):
    """The SIP edge in front of the nodes (callcenter/edge/): registrar for the phones, the carrier's
    and the phones' one address, dispatcher to the nodes. Used only when cluster.nodes is set."""
    address: Annotated[str, Field(pattern=r"^[A-Za-z0-9.:\-]+$")] = "127.0.0.1"
    sip_port: int = Field(5060, ge=1, le=65535)
    # OPTIONS to every node this often; a node that does not answer `probe_failures` probes in a row
    # (each waits up to `transaction_timeout_ms`) is out until it answers again
    probe_interval_seconds: int = Field(1, ge=1, le=60)
    probe_failures: int = Field(1, ge=1, le=10)
    # a node that has not answered an INVITE (not even 100 Trying) within this gives the call to the next
    transaction_timeout_ms: int = Field(1500, ge=500, le=30000)
    # in-dialog OPTIONS to both ends of every call this often: a call whose node died is ended with a BYE
    # to the agent's phone (else the agent would stay busy at the edge until they hung up); 0 = off,
    # else at least 30 (the dialog module's floor)
    dialog_keepalive_seconds: int = Field(30, ge=0, le=3600)
    # keepalives in a row that time out (408) or find no dialog (481) before the call is ended: one slow
    # answer (a browser tab busy past `transaction_timeout_ms`, a lost datagram) must not cut a live call
    dialog_keepalive_failures: int = Field(2, ge=1, le=10)
    children: int = Field(4, ge=1, le=64)
    # SIP over secure WebSocket for the desks' browser phones in cluster mode (Kamailio's websocket and
    # tls modules, a certificate from the install's CA for `address`); none = no browser phones here
    wss_port: int | None = Field(None, ge=1, le=65535)
    binary: str = "/usr/sbin/kamailio"
    module_dir: str = "/usr/lib/x86_64-linux-gnu/kamailio/modules"

    @field_validator("dialog_keepalive_seconds")
    @classmethod
    def keepalive_floor(cls, v: int) -> int:
        if 0 < v < 30:
            raise ValueError(f"{v}: 0 (off) or at least 30 (Kamailio's dialog module refuses less)")
        return v


class Cluster(Strict):
    """Several Asterisk nodes behind Kamailio, sharing PostgreSQL and Redis. No nodes: one node, as before."""
    node: Ident | None = None     # which of ``nodes`` this process serves (HOTLINE_CLUSTER__NODE)
    nodes: list[ClusterNode] = []
    kamailio: KamailioSettings = KamailioSettings()
    # false: nodes without the Kamailio edge — each node takes its own phones' registrations and carrier
    # calls (a carrier that fails over by its own trunk groups); one agent, one call then rests on the
    # relayed device states alone, not on the edge's 486 (docs/scale-out.md)
    edge: bool = True

    @property
    def behind_edge(self) -> bool:
        return bool(self.nodes) and self.edge

    @model_validator(mode="after")
    def consistent(self) -> "Cluster":
        names = [n.name for n in self.nodes]
        if len(set(names)) != len(names):
            raise ValueError(f"nodes: a name is used twice ({', '.join(sorted(names))})")
        seen: dict[str, str] = {}
        for n in self.nodes:
            for city in n.cities:
                if city in seen:
                    raise ValueError(f"nodes: city {city!r} is served first by both {seen[city]} and {n.name}")
                seen[city] = n.name
        for where, addr in [(f"nodes.{n.name}.address", n.address) for n in self.nodes] + \
                [("kamailio.address", self.kamailio.address)] * (bool(self.nodes) and self.edge):
            try:   # each node admits SIP from the edge and its peers only, by address (confgen/pjsip.py)
                ipaddress.ip_address(addr)
            except ValueError:
                raise ValueError(f"{where}: {addr!r} is not an IP address (the nodes' SIP ACL permits "
                                 f"the edge and the other nodes by address)") from None
        if self.node is not None and self.node not in names:
            raise ValueError(f"node: {self.node!r} is not one of nodes ({', '.join(names) or 'none configured'})")
        k = self.kamailio
        for n in self.nodes if self.edge else []:
            if (n.address, n.sip_port) == (k.address, k.sip_port):
                raise ValueError(f"nodes: {n.name} has kamailio's SIP address {k.address}:{k.sip_port}")
        return self

    def this(self) -> ClusterNode | None:
        return next((n for n in self.nodes if n.name == self.node), None)


class PromptSettings(Strict):
    """Recording IVR prompts by phone (docs/prompts.md): the feature code supervisors dial from their
    SIP phone, and optionally a number on the carrier trunk where they enter their PIN instead."""
    record_code: Annotated[str, Field(pattern=r"^\*[0-9]{2,4}$")] = "*77"
    record_number: Annotated[str, Field(pattern=r"^([0-9]{5,20})?$")] = ""   # empty: not reachable from outside


class SmsSettings(Strict):
    """Texts to callers over SMPP 3.4 (interop/sms.py, run by `hotline interop`): the operator's SMSC,
    bound as a transceiver. The password is the SMSC's, kept in secrets.json as ``smpp_password``."""
    enabled: bool = False
    host: str = ""
    port: int = Field(2775, ge=1, le=65535)
    system_id: str = Field("", max_length=15)          # SMPP 3.4: a C-string of at most 16 octets
    system_type: str = Field("", max_length=12)
    source_address: str = Field("12348", pattern=r"^[0-9A-Za-z]{1,20}$")
    # texts per second the SMSC allows us (the contract's throughput); parts count one each
    throughput_per_second: float = Field(10, gt=0, le=1000)
    enquire_link_seconds: float = Field(30, ge=0.2, le=600)
    response_timeout_seconds: float = Field(10, ge=0.2, le=120)
    reconnect_seconds: float = Field(1, ge=0.05, le=600)      # first wait after a lost link, doubling ...
    reconnect_max_seconds: float = Field(60, ge=0.05, le=3600)  # ... up to this
    throttle_seconds: float = Field(1, ge=0.01, le=600)       # first pause after ESME_RTHROTTLED/RMSGQFUL
    # local time; outside it texts wait (no reminders at night); the default is the follow-up calls' hours
    sending_hours: str = "09:00-20:00"
    # kinds sent at any hour: a confirmation, or the article the agent texts during the call, answers
    # what the caller just asked for on the phone
    any_hour_kinds: list[str] = ["appointment_confirmation", "appointment_cancelled", "kb_summary"]
    max_attempts: int = Field(10, ge=1, le=1000)        # refusals and lost links; then a dead letter
    lease_seconds: float = Field(60, ge=1, le=3600)
    poll_seconds: float = Field(0.5, ge=0.05, le=60)

    @field_validator("sending_hours")
    @classmethod
    def span(cls, v: str) -> str:
        from core.schedule import parse_span
        parse_span(v)
        return v

    @field_validator("system_id", "system_type")
    @classmethod
    def ascii_only(cls, v: str) -> str:
        if not v.isascii() or not v.isprintable():
            raise ValueError(f"{v!r}: SMPP sends it as printable ASCII")
        return v

    @model_validator(mode="after")
    def complete(self) -> "SmsSettings":
        if self.enabled:
            missing = [name for name in ("host", "system_id") if not getattr(self, name)]
            if missing:
                raise ValueError(f"enabled needs {' and '.join(missing)} (the SMSC's address and our account)")
        if self.reconnect_seconds > self.reconnect_max_seconds:
            raise ValueError(f"reconnect_seconds ({self.reconnect_seconds}) is more than "
                             f"reconnect_max_seconds ({self.reconnect_max_seconds})")
        return self


class SystemFile(Strict):
    state_dir: str = ".hotline"
    # the roster (agents, interpreters, supervisors) may live elsewhere, e.g. kept by the duty office
    agents_file: str = "agents.yaml"     # relative to the config directory, or absolute
    node: Node
    asterisk: AsteriskSettings
    trunk: Trunk
    controller: ControllerSettings
    database: Database
    redis: RedisSettings
    queues: QueueSettings
    transcription: TranscriptionSettings = TranscriptionSettings()
    interop: InteropSettings = InteropSettings()
    federation: FederationSettings = FederationSettings()
    wallboard: WallboardSettings = WallboardSettings()
    numbering_plan: NumberingPlan = NumberingPlan()
    privacy: PrivacySettings = PrivacySettings()
    sip_guard: SipGuardSettings = SipGuardSettings()
    audit: AuditSettings = AuditSettings()
    phones: Phones = Phones()
    cluster: Cluster = Cluster()
    prompts: PromptSettings = PromptSettings()
    sms: SmsSettings = SmsSettings()

    @model_validator(mode="after")
    def tls_needs_a_port(self) -> "SystemFile":
        users = [name for name, t in (("phones.transport", self.phones.transport),
                                      ("trunk.transport", self.trunk.transport)) if t == "tls"]
        if users and self.asterisk.tls_port is None:
            raise ValueError(f"{' and '.join(users)}: tls needs asterisk.tls_port")
        return self

    @model_validator(mode="after")
    def browser_phones_need_wss(self) -> "SystemFile":
        a = self.asterisk
        if self.phones.browser and a.wss_port is None:
            raise ValueError("phones.browser: browser phones need asterisk.wss_port")
        if a.wss_port is not None and a.tls_port is None:
            raise ValueError("asterisk.wss_port: secure WebSocket uses the TLS certificate: set asterisk.tls_port too")
        if a.wss_port is not None and a.wss_port in (a.ami_port, a.tls_port):
            raise ValueError(f"asterisk.wss_port ({a.wss_port}) is also ami_port or tls_port")
        k = self.cluster.kamailio
        if self.phones.browser and self.cluster.nodes and k.wss_port is None:
            raise ValueError("phones.browser: behind the edge browser phones register at Kamailio: "
                             "set cluster.kamailio.wss_port")
        if k.wss_port is not None and k.wss_port == k.sip_port:
            raise ValueError(f"cluster.kamailio.wss_port ({k.wss_port}) is also its sip_port")
        return self


