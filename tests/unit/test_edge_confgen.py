"""The edge's generated Kamailio config, Asterisk's cluster mode and the cluster config rules."""
import shutil
import subprocess
from pathlib import Path

import pytest

from callcenter.asterisk.confgen import generate as asterisk_files
from callcenter.edge import confgen
from core.config import ConfigError, load_config
from core.paths import InstancePaths
from store.secrets import Secrets

CLUSTER = {"kamailio": {"address": "127.9.9.1", "sip_port": 5060},
           "nodes": [{"name": "na", "address": "127.9.9.2", "ami_port": 15038, "http_port": 18348,
                      "cities": ["chengdu", "leshan"]},
                     {"name": "nb", "address": "127.9.9.3", "ami_port": 15039, "http_port": 18349,
                      "cities": ["ganzi", "aba", "mianyang"]}]}
CFG = load_config(None, {"cluster": CLUSTER})
SECRETS = Secrets("hotline", "s3cr3t-ami", {a: f"pw-{a}" for a in CFG.sip_accounts()})


def test_each_did_goes_to_the_node_serving_its_city_first():
    sets = confgen.did_sets(CFG)
    assert sets["083312348"] == 1 and sets["081612348"] == 2 and sets["083612348"] == 2
    assert sets["02812348"] == 1          # shared 028: the node of its default city (Chengdu)
    assert sets["081312348"] == 1         # Zigong is listed by no node: the first node's set


def test_every_node_is_the_others_standby():
    ds = confgen.dispatcher_list(CFG)
    assert "1 sip:127.9.9.2:5060 0 20 duid=na;role=primary" in ds
    assert "1 sip:127.9.9.3:5060 0 10 duid=nb;role=standby" in ds
    assert "2 sip:127.9.9.3:5060 0 20 duid=nb;role=primary" in ds
    assert "2 sip:127.9.9.2:5060 0 10 duid=na;role=standby" in ds


def test_kamailio_cfg_has_the_named_routes_and_the_passwords_stay_in_the_secrets_file():
    files = confgen.generate(CFG, SECRETS, "/run/edge")
    cfg = files["kamailio.cfg"]
    for route in ("REGISTRAR", "FROM_CARRIER", "FROM_NODE", "FROM_PHONE", "ONE_CALL", "TO_NODE"):
        assert f"route[{route}]" in cfg
    assert "failure_route[NODE_FAILOVER]" in cfg and 'ds_select_dst("$var(set)", "8")' in cfg
    assert 'set_dlg_profile("agent", "$var(agent)")' in cfg and '"486", "Busy Here"' in cfg
    assert "$sht(dids=>083312348) = 1;" in cfg
    # a dead node's calls end on the keepalive, but only after two unanswered in a row (a slow browser)
    assert 'dlg_set_property("ka-dst")' in cfg and 'modparam("dialog", "ka_failed_limit", 2)' in cfg
    assert "pw-agent1001" not in cfg
    assert '$sht(phones=>agent1001) = "pw-agent1001";' in files[confgen.SECRETS_FILE]


@pytest.mark.skipif(shutil.which("kamailio") is None, reason="kamailio is not installed")
def test_kamailio_accepts_the_generated_config(tmp_path):
    for name, text in confgen.generate(CFG, SECRETS, str(tmp_path)).items():
        (tmp_path / name).write_text(text)
    r = subprocess.run(["kamailio", "-c", "-f", str(tmp_path / "kamailio.cfg")], capture_output=True, text=True,
                       timeout=30)
    assert r.returncode == 0, r.stderr[-2000:]


def test_asterisk_behind_the_edge():
    pjsip = asterisk_files(CFG, SECRETS, InstancePaths(Path("/rootfs"), "main"), "/m")["pjsip.conf"]
    trunk = pjsip.split("type = identify")[1]
    assert "match = 127.9.9.1" in trunk and "match = 127.0.0.1" not in trunk
    agent = pjsip.split("; ---- agent agent1001")[1].split("; ----")[0]
    assert "contact = sip:agent1001@127.9.9.1:5060" in agent
    assert "type = auth" not in agent and "auth =" not in agent     # the edge authenticates phones
    assert "outbound_proxy = sip:127.9.9.1:5060\\;lr" in pjsip


def test_a_process_serving_a_node_takes_its_address_and_ports():
    cfg = load_config(None, {"cluster": {**CLUSTER, "node": "nb"}})
    a = cfg.system.asterisk
    assert (a.sip_bind, a.sip_port, a.ami_port) == ("127.9.9.3", 5060, 15039)
    assert cfg.system.controller.http_port == 18349 and a.instance.endswith("_nb")
    files = asterisk_files(cfg, SECRETS, InstancePaths(Path("/rootfs"), a.instance), "/m")
    assert "systemname = nb" in files["asterisk.conf"]        # call ids unique across nodes
    assert "systemname" not in asterisk_files(CFG, SECRETS, InstancePaths(Path("/rootfs"), "main"),
                                              "/m")["asterisk.conf"]


@pytest.mark.parametrize("cluster, error", [
    ({**CLUSTER, "kamailio": {"address": "127.9.9.2", "sip_port": 5060}}, "kamailio's SIP address"),
    ({**CLUSTER, "kamailio": {"dialog_keepalive_seconds": 10}}, "at least 30"),
    ({**CLUSTER, "node": "nc"}, "is not one of nodes"),
    ({**CLUSTER, "nodes": [{**CLUSTER["nodes"][0], "cities": ["lesahn"]}]},
     r"cluster.nodes\[0\].cities: 'lesahn' is not a city"),
])
def test_bad_cluster_config_is_refused_with_the_field(cluster, error):
    with pytest.raises(ConfigError, match=error):
        load_config(None, {"cluster": cluster})


def test_config_check_generates_and_checks_the_edge():
    from hotline.config_check import check

    report = check(overrides={"cluster": CLUSTER})
    assert report.ok, report.problems
    assert report.summary["edge_files"] == ["dispatcher.list", "edge-secrets.cfg", "kamailio.cfg"]
    assert "edge_files" not in check().summary          # a single node has no edge


def test_cluster_addresses_are_ip_addresses_for_the_nodes_acl():
    """Each node admits SIP from the edge and its peers by address (pjsip.conf's ACL): a host name
    there is a config error that names the field, not a node that refuses its own edge."""
    import pydantic

    from core.config.system import Cluster
    nodes = [{"name": "na", "address": "127.0.0.2"}, {"name": "nb", "address": "media-b.example"}]
    with pytest.raises(pydantic.ValidationError, match=r"nodes\.nb\.address: 'media-b.example' is not an IP address"):
        Cluster(nodes=nodes)
    with pytest.raises(pydantic.ValidationError, match=r"kamailio\.address: 'edge.example' is not an IP address"):
        Cluster(nodes=nodes[:1], kamailio={"address": "edge.example"})
    assert Cluster(kamailio={"address": "edge.example"}).nodes == []    # no nodes: no edge, nothing to check
# ---- the desks' browser phones behind the edge (issue 21, multi-node)
WS_OVERRIDES = {"cluster": {**CLUSTER, "kamailio": {**CLUSTER["kamailio"], "wss_port": 8443}},
                "asterisk": {"tls_port": 5061, "wss_port": 8089}, "phones": {"browser": ["agent1001"]}}


def test_browser_phones_register_at_the_edges_websocket():
    cfg = load_config(None, WS_OVERRIDES)
    files = confgen.generate(cfg, SECRETS, "/run/edge")
    k = files["kamailio.cfg"]
    assert "listen=tls:127.9.9.1:8443" in k and "disable_tcp=yes" not in k
    assert 'loadmodule "websocket.so"' in k and "ws_handle_handshake()" in k
    assert "fix_nated_register()" in k and "add_contact_alias()" in k and "handle_ruri_alias()" in k
    assert "certificate = /run/edge/edge.pem" in files[confgen.TLS_FILE]
    # without wss_port nothing of it (the UDP-only edge as before)
    plain = confgen.generate(CFG, SECRETS, "/run/edge")
    assert confgen.TLS_FILE not in plain and "websocket" not in plain["kamailio.cfg"]
    # the node keeps WebRTC for the browser agent, reached over UDP through the edge
    pjsip = asterisk_files(cfg, SECRETS, InstancePaths(Path("/rootfs"), "main"), "/m")["pjsip.conf"]
    web = pjsip.split("; ---- agent agent1001")[1].split("; ----")[0]
    assert "webrtc = yes" in web and "transport =" not in web and "contact = sip:agent1001@127.9.9.1:5060" in web
    sip = pjsip.split("; ---- agent agent1002")[1].split("; ----")[0]
    assert "webrtc" not in sip


@pytest.mark.skipif(shutil.which("kamailio") is None, reason="kamailio is not installed")
def test_kamailio_accepts_the_websocket_config(tmp_path):
    cfg = load_config(None, WS_OVERRIDES)
    for name, text in confgen.generate(cfg, SECRETS, str(tmp_path)).items():
        (tmp_path / name).write_text(text)
    r = subprocess.run(["kamailio", "-c", "-f", str(tmp_path / "kamailio.cfg")], capture_output=True, text=True,
                       timeout=30)
    assert r.returncode == 0, r.stderr[-2000:]


def test_browser_phones_behind_the_edge_need_its_websocket():
    with pytest.raises(ConfigError, match="cluster.kamailio.wss_port"):
        load_config(None, {**WS_OVERRIDES, "cluster": CLUSTER})
