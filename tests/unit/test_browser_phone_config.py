"""The browser phone's configuration (issue 21): which agents' phone is the browser, the secure
WebSocket it needs, and what Asterisk is given for it."""
from pathlib import Path

import pytest

from callcenter.asterisk.confgen import generate
from core.config import ConfigError, load_config
from core.paths import InstancePaths
from store.secrets import Secrets

WSS = {"asterisk": {"tls_port": 15061, "wss_port": 18089}, "phones": {"browser": ["agent1001"]}}


def files(overrides: dict) -> dict[str, str]:
    cfg = load_config(None, overrides)
    secrets = Secrets(ami_user="u", ami_secret="s", agent_passwords={i: f"pw-{i}" for i in cfg.sip_accounts()},
                      service_token="t", privacy_key="k", bus_key="k")
    return generate(cfg, secrets, InstancePaths(Path("/rootfs"), "main"), "/usr/lib/x/asterisk/modules")


def section(conf: str, name: str, kind: str) -> str:
    for block in conf.split("\n["):
        if block.startswith(f"{name}]") and f"type = {kind}" in block:
            return block
    raise AssertionError(f"no [{name}] {kind}")


def test_a_browser_agent_is_a_webrtc_endpoint_on_the_secure_websocket_only():
    f = files(WSS)
    pjsip = f["pjsip.conf"]
    web = section(pjsip, "agent1001", "endpoint")
    assert "webrtc = yes" in web and "transport = transport-wss" in web
    assert "media_address = 127.0.0.1" in web and "allow = alaw,ulaw" in web
    assert "rewrite_contact" not in web        # the WebSocket is the way back to the browser
    # the other agents keep their SIP phones, one account each: never two phones for one agent
    sip = section(pjsip, "agent1008", "endpoint")
    assert "webrtc" not in sip and "rewrite_contact = yes" in sip
    assert pjsip.count("[agent1001]\ntype = endpoint") == 1
    assert "max_contacts = 1" in section(pjsip, "agent1001", "aor")
    assert "protocol = wss" in section(pjsip, "transport-wss", "transport")
    http = f["http.conf"]
    assert "tlsenable = yes" in http and "tlsbindaddr = 127.0.0.1:18089" in http
    assert "bindport = 0" in http and "bindaddr = 127.0.0.1" in http    # nothing served in the clear
    # the certificate `hotline setup` signs with the node's CA, as for SIP over TLS
    assert "tlscertfile = /srv/hotline/main/etc/keys/asterisk.pem" in http
    for module in ("res_http_websocket.so", "res_pjsip_transport_websocket.so", "res_srtp.so"):
        assert f"load = {module}" in f["modules.conf"]


def test_without_wss_nothing_listens_and_every_agent_has_a_sip_phone():
    f = files({})
    assert "enabled = no" in f["http.conf"] and "tlsenable" not in f["http.conf"]
    assert "webrtc" not in f["pjsip.conf"] and "transport-wss" not in f["pjsip.conf"]


@pytest.mark.parametrize("overrides, message", [
    ({"phones": {"browser": ["agent1001"]}}, "phones.browser: browser phones need asterisk.wss_port"),
    ({"asterisk": {"tls_port": None, "wss_port": 18089}}, "set asterisk.tls_port too"),
    ({"asterisk": {"wss_port": 5038}}, "is also ami_port or tls_port"),
    ({**WSS, "phones": {"browser": ["agent9999"]}}, "phones.browser: agent9999: not an agent"),
    ({**WSS, "phones": {"browser": ["agent 1"]}}, "phones.browser"),
])
def test_bad_browser_phone_settings_are_named(overrides, message):
    with pytest.raises(ConfigError, match=message):
        load_config(None, overrides)


def test_behind_the_edge_the_desk_registers_at_kamailios_websocket():
    from dashboard.routes import phone
    cluster = {"kamailio": {"address": "127.9.9.1", "sip_port": 5060, "wss_port": 8443},
               "nodes": [{"name": "na", "address": "127.9.9.2", "ami_port": 15038, "http_port": 18348,
                          "cities": ["leshan"]}], "node": "na"}
    cfg = load_config(None, {**WSS, "cluster": cluster})
    # the page's WebSocket and SIP domain are the edge's, and the CSP's connect-src names that origin
    assert phone.wss_origin(cfg) == "wss://127.9.9.1:8443" and phone.ws_host(cfg) == "127.9.9.1"
    # a single node keeps Asterisk's own WebSocket
    assert phone.wss_origin(load_config(None, WSS)) == "wss://127.0.0.1:18089"
