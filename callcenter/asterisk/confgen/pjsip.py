"""pjsip.conf: the carrier trunk, the partners' trunks (warm transfers out) and one account per
agent, SIP-connected interpreter and supervisor."""
from __future__ import annotations

import ipaddress

from core.config import HotlineConfig
from core.contract import TRUNK_CONTEXT
from core.paths import InstancePaths
from store.secrets import Secrets

from .common import HEADER


def pjsip_conf(cfg: HotlineConfig, secrets: Secrets) -> str:
    a = cfg.system.asterisk
    # RTP on the SIP address, not on every interface: nothing listens where it need not, and Asterisk
    # does not look up its own address (gethostname + DNS) for every RTP session — a lookup that took
    # 5 s under load held up every request behind it (bench/bench_load.py, docs/performance.md)
    media = ("" if a.sip_bind in ("0.0.0.0", "::", "[::]") else
             f"media_address = {a.sip_bind}\nbind_rtp_to_media_address = yes\n")
    return HEADER + _global_and_trunk(cfg, media) + _partner_trunks(cfg, media) + _phones(cfg, secrets, media) \
        + _tls_transport(cfg) + _wss_transport(cfg) + _edge_acl(cfg)


EDGE_ACL = "edge-only"


def _edge_acl(cfg: HotlineConfig) -> str:
    """Behind the edge this node asks no phone for a password (Kamailio did), so it takes SIP from
    Kamailio and the other nodes only: anything else, an INVITE naming an agent included, gets 403.
    res_pjsip_acl applies it to every request; the rules run in order, the last match decides."""
    c = cfg.system.cluster
    if not c.behind_edge:
        return ""
    peers = [c.kamailio.address] + [n.address for n in c.nodes]
    permits = "".join(f"permit = {ip}/{32 if ipaddress.ip_address(ip).version == 4 else 128}\n"
                      for ip in dict.fromkeys(peers))
    return f"""
; ---- behind the edge: SIP from Kamailio and the other nodes only (docs/scale-out.md)
[{EDGE_ACL}]
type = acl
deny = 0.0.0.0/0.0.0.0
deny = ::/0
{permits}"""


TLS_TRANSPORT = "transport-tls"
WSS_TRANSPORT = "transport-wss"


def _wss_transport(cfg: HotlineConfig) -> str:
    """SIP over secure WebSocket for the desk's browser phones: the WebSocket is Asterisk's HTTP server
    with TLS (http.conf, the node's certificate), this transport only names it."""
    if cfg.system.asterisk.wss_port is None:
        return ""
    return f"""
; ---- SIP over secure WebSocket: the desk's browser phones (http.conf tlsbindaddr)
[{WSS_TRANSPORT}]
type = transport
protocol = wss
bind = {cfg.system.asterisk.sip_bind}
"""


# a browser phone: WebRTC (DTLS-SRTP keyed by fingerprint, ICE, AVPF, RTCP multiplexed), reached over
# the secure WebSocket only
BROWSER_MEDIA = f"webrtc = yes\ntransport = {WSS_TRANSPORT}\n"


def _tls_transport(cfg: HotlineConfig) -> str:
    """SIP over TLS for phones (and the trunk if it says tls), with the certificate `hotline setup`
    signed with the node's CA (store/tls.py) and copied into the instance (runtime.install)."""
    a, t = cfg.system.asterisk, cfg.system.trunk
    if a.tls_port is None:
        return ""
    keys = InstancePaths(cfg.resolve(a.rootfs), a.instance).keys
    return f"""
; ---- SIP over TLS: agents' phones{" and the carrier trunk" if t.transport == "tls" else ""}
[{TLS_TRANSPORT}]
type = transport
protocol = tls
bind = {a.sip_bind}:{a.tls_port}
cert_file = {keys}/asterisk.pem
priv_key_file = {keys}/asterisk.key
; the CAs Asterisk trusts when it connects out (the carrier's, else this node's own)
ca_list_file = {keys}/ca.pem
method = tlsv1_2
verify_server = {"yes" if t.transport == "tls" and t.tls_verify_server else "no"}
verify_client = no
require_client_cert = no
"""


def _phone_security(cfg: HotlineConfig) -> str:
    """Phones required to use TLS: Asterisk reaches them only over TLS, and a call whose media is not
    SRTP (SDES keys, carried inside the TLS signalling) is refused rather than sent in the clear."""
    if cfg.system.phones.transport != "tls":
        return ""
    return f"transport = {TLS_TRANSPORT}\nmedia_encryption = sdes\nmedia_encryption_optimistic = no\n"


def _trunk_contact(outbound: str, transport: str) -> str:
    if transport != "tls":
        return outbound
    # the SIP-over-TLS port by default (RFC 3261: 5061), not the UDP one
    return outbound + ("" if outbound.count(":") == 2 else ":5061") + ";transport=tls"


def _global_and_trunk(cfg: HotlineConfig, media: str) -> str:
    a, t = cfg.system.asterisk, cfg.system.trunk
    return f"""[global]
type = global
; Agents are identified by their SIP user before the trunk is matched by source address, so an
; agent's phone on the carrier's network (or on loopback in the demo) is never taken for the trunk.
endpoint_identifier_order = username,ip
user_agent = 12348-hotline
default_realm = hotline12348
; new SIP requests are ignored while a task queue is over its high-water mark: PJSIP's own queues only
; (core/config/system.py AsteriskSettings.overload_trigger says why)
taskprocessor_overload_trigger = {a.overload_trigger}

[transport-udp]
type = transport
protocol = udp
bind = {a.sip_bind}:{a.sip_port}

; ---- carrier trunk: inbound <area code>12348 calls
[{t.name}]
type = endpoint
; only by source address: a request merely saying it is from user "{t.name}" must not become the trunk
identify_by = ip
context = {TRUNK_CONTEXT}
disallow = all
allow = {",".join(t.codecs)}
dtmf_mode = rfc4733
direct_media = no
{media}rtp_symmetric = yes
send_pai = no
trust_id_inbound = yes
; a caller whose phone vanished without a BYE must not hold an agent forever
rtp_timeout = 60
rtp_timeout_hold = 600
""" + (f"transport = {TLS_TRANSPORT}\n" if t.transport == "tls" else "") \
        + _trunk_via_edge(cfg) \
        + (f"aors = {t.name}\nfrom_domain = hotline12348\n\n[{t.name}]\ntype = aor\n"
           f"contact = {_trunk_contact(t.outbound, t.transport)}\n" if t.outbound else "") + f"""

[{t.name}]
type = identify
endpoint = {t.name}
""" + "".join(f"match = {m}\n" for m in _trunk_match(cfg))


def _edge(cfg: HotlineConfig) -> str | None:
    """Kamailio's host:port when this Asterisk is a node behind it (cluster.nodes set), else None."""
    c = cfg.system.cluster
    return f"{c.kamailio.address}:{c.kamailio.sip_port}" if c.behind_edge else None


def _trunk_match(cfg: HotlineConfig) -> list[str]:
    # behind the edge every carrier call arrives from Kamailio (docs/scale-out.md)
    return [cfg.system.cluster.kamailio.address] if _edge(cfg) else cfg.system.trunk.match


def _trunk_via_edge(cfg: HotlineConfig) -> str:
    """Behind the edge, calls to the carrier (callbacks) leave through Kamailio too, so the carrier
    sees one address and in-dialog requests follow Kamailio's Record-Route."""
    edge = _edge(cfg)
    return f"outbound_proxy = sip:{edge}\\;lr\n" if edge and cfg.system.trunk.outbound else ""


def _partner_trunks(cfg: HotlineConfig, media: str) -> str:
    t = cfg.system.trunk
    out = []
    for pid, p in cfg.partners.items():
        if p.sip is None:
            continue
        for city, uri in p.sip.uris.items():
            host = uri.split("@", 1)[1]
            out.append(f"""
; ---- partner {pid} trunk ({city}): warm transfers out, nothing in
[partner-{pid}-{city}]
type = endpoint
identify_by = ip
context = hotline-refuse
disallow = all
allow = {",".join(t.codecs)}
dtmf_mode = rfc4733
direct_media = no
{media}aors = partner-{pid}-{city}
from_domain = hotline12348

[partner-{pid}-{city}]
type = aor
contact = sip:{host}
""")
    return "".join(out)


def _phones(cfg: HotlineConfig, secrets: Secrets, media: str) -> str:
    if _edge(cfg):
        return _phones_behind_edge(cfg, media)
    out = []
    phones = [("agent", a) for a in cfg.agents] + [("interpreter", i) for i in cfg.interpreters if not i.number]
    phones += [("supervisor", s) for s in cfg.supervisors]
    browser = set(cfg.system.phones.browser)
    for kind, ag in phones:
        web = kind == "agent" and ag.id in browser
        security = (BROWSER_MEDIA if web else
                    _phone_security(cfg) + "rtp_symmetric = yes\nforce_rport = yes\nrewrite_contact = yes\n")
        out.append(f"""
; ---- {kind} {ag.id} ({ag.name}){" - the desk's browser phone" if web else ""}
[{ag.id}]
type = endpoint
context = hotline-agents
disallow = all
allow = alaw,ulaw
dtmf_mode = rfc4733
direct_media = no
{media}{security}rtp_timeout = 60
rtp_timeout_hold = 600
auth = {ag.id}
aors = {ag.id}
callerid = "{ag.name}" <{ag.id}>

[{ag.id}]
type = auth
auth_type = userpass
username = {ag.id}
password = {secrets.agent_passwords[ag.id]}

[{ag.id}]
type = aor
max_contacts = 1
remove_existing = yes
qualify_frequency = 30
""")
    return "".join(out)


def _phones_behind_edge(cfg: HotlineConfig, media: str) -> str:
    """Cluster mode: phones register with Kamailio (the edge), not here. Each account's contact is the
    agent at Kamailio, which finds the phone in its location table and refuses a second call to a busy
    agent whichever node rings. Kamailio authenticated the phone's own requests already; this node's
    SIP port must be reachable from the edge and the other nodes only (docs/scale-out.md)."""
    edge = _edge(cfg)
    out = []
    phones = [("agent", a) for a in cfg.agents] + [("interpreter", i) for i in cfg.interpreters if not i.number]
    phones += [("supervisor", s) for s in cfg.supervisors]
    browser = set(cfg.system.phones.browser)
    for kind, ag in phones:
        web = kind == "agent" and ag.id in browser
        # a browser phone registered at the edge's WebSocket: still WebRTC (DTLS-SRTP, ICE) end to end
        # with this node; only its signalling is relayed, over UDP to here (no transport named)
        security = "webrtc = yes\n" if web else _phone_security(cfg) + "rtp_symmetric = yes\n"
        out.append(f"""
; ---- {kind} {ag.id} ({ag.name}): reached through the edge{" - the desk's browser phone" if web else ""}
[{ag.id}]
type = endpoint
context = hotline-agents
disallow = all
allow = alaw,ulaw
dtmf_mode = rfc4733
direct_media = no
{media}{security}rtp_timeout = 60
rtp_timeout_hold = 600
aors = {ag.id}
callerid = "{ag.name}" <{ag.id}>

[{ag.id}]
type = aor
contact = sip:{ag.id}@{edge}
; not qualified from here: a static contact at the edge would look unreachable until the next probe
; after the phone registers; the edge answers 404 for a phone not registered, 486 for a busy agent,
; and the queue rings the next member
qualify_frequency = 0
""")
    return "".join(out)
