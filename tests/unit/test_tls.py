"""SIP over TLS and SRTP: the node's CA and Asterisk's certificate (store/tls.py, made with openssl),
the pjsip.conf it generates (transport-tls, SRTP-only phones, the trunk on TLS), the config's checks,
and the baresip and linphone configs `hotline phone-config` writes."""
from __future__ import annotations

import stat
import subprocess
from pathlib import Path

import pytest

from agents.phone_config import baresip_files, linphone_rc
from callcenter.asterisk.confgen import generate
from core.config import ConfigError, load_config
from core.paths import InstancePaths
from store import tls as tlsmod
from store.secrets import Secrets
from store.tls import cert_names, ensure_tls, tls_files


def _pjsip(**overrides) -> str:
    cfg = load_config(overrides=overrides)
    secrets = Secrets("hotline", "ami", {a: f"pw-{a}" for a in cfg.sip_accounts()})
    return generate(cfg, secrets, InstancePaths(Path("/rootfs"), "main"), "/usr/lib/x/asterisk/modules")["pjsip.conf"]


def _section(conf: str, name: str, kind: str) -> str:
    """The body of [name] with type = kind (pjsip.conf has several sections per name)."""
    for part in conf.split(f"\n[{name}]\n")[1:]:
        body = part.split("\n[")[0]
        if f"type = {kind}\n" in body:
            return body
    raise AssertionError(f"no [{name}] of type {kind}")


def test_the_tls_transport_uses_the_instances_certificate_and_tls_1_2():
    conf = _pjsip()
    t = _section(conf, "transport-tls", "transport")
    assert "protocol = tls\n" in t and "bind = 127.0.0.1:5061\n" in t and "method = tlsv1_2\n" in t
    assert "cert_file = /srv/hotline/main/etc/keys/asterisk.pem\n" in t
    assert "priv_key_file = /srv/hotline/main/etc/keys/asterisk.key\n" in t
    assert "ca_list_file = /srv/hotline/main/etc/keys/ca.pem\n" in t
    assert "verify_server = no\n" in t        # Asterisk connects out over TLS only to a carrier on TLS
    # no TLS port, no transport
    assert "[transport-tls]" not in _pjsip(asterisk={"tls_port": None})


def test_shipped_default_keeps_phones_and_trunk_on_udp():
    conf = _pjsip()
    for account in ("agent1001", "sup_leshan"):
        ep = _section(conf, account, "endpoint")
        assert "media_encryption" not in ep and "transport =" not in ep
    assert "transport =" not in _section(conf, "carrier", "endpoint")


def test_phones_on_tls_are_reached_only_over_tls_and_only_with_srtp():
    cfg = load_config(overrides={"phones": {"transport": "tls"}})
    conf = _pjsip(phones={"transport": "tls"})
    for account in cfg.sip_accounts():
        ep = _section(conf, account, "endpoint")
        assert "transport = transport-tls\n" in ep, account
        assert "media_encryption = sdes\n" in ep and "media_encryption_optimistic = no\n" in ep, account
    trunk = _section(conf, "carrier", "endpoint")
    assert "media_encryption" not in trunk and "transport =" not in trunk
    assert "load = res_srtp.so" in generate(cfg, Secrets("hotline", "ami", {a: "pw" for a in cfg.sip_accounts()}),
                                            InstancePaths(Path("/rootfs"), "main"), "/m")["modules.conf"]


def test_the_trunk_on_tls_is_called_over_tls_and_its_certificate_checked():
    conf = _pjsip(trunk={"transport": "tls", "outbound": "sip:sbc.carrier.example"})
    assert "transport = transport-tls\n" in _section(conf, "carrier", "endpoint")
    assert "contact = sip:sbc.carrier.example:5061;transport=tls\n" in _section(conf, "carrier", "aor")
    assert "verify_server = yes\n" in _section(conf, "transport-tls", "transport")
    conf = _pjsip(trunk={"transport": "tls", "outbound": "sip:10.1.2.3:5071", "tls_verify_server": False})
    assert "contact = sip:10.1.2.3:5071;transport=tls\n" in _section(conf, "carrier", "aor")
    assert "verify_server = no\n" in _section(conf, "transport-tls", "transport")


@pytest.mark.parametrize("overrides, message", [
    ({"phones": {"transport": "tls"}, "asterisk": {"tls_port": None}}, "phones.transport: tls needs asterisk.tls_port"),
    ({"trunk": {"transport": "tls"}, "asterisk": {"tls_port": None}}, "trunk.transport: tls needs asterisk.tls_port"),
    ({"asterisk": {"tls_port": 5038, "ami_port": 5038}}, "tls_port (5038) is also ami_port"),
    ({"phones": {"transport": "srtp"}}, "phones.transport"),
    ({"asterisk": {"tls_names": ["bad name"]}}, "asterisk.tls_names"),
])
def test_tls_settings_are_checked(overrides, message):
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)")):
        load_config(overrides=overrides)


# ---------------------------------------------------------------- the CA and the certificate
def _cfg(tmp_path: Path, **asterisk):
    return load_config(overrides={"state_dir": str(tmp_path / "state"), "asterisk": asterisk})


def _verify(cert: Path, ca: Path, name: str) -> subprocess.CompletedProcess:
    flag = "-verify_ip" if name[0].isdigit() else "-verify_hostname"
    return subprocess.run(["openssl", "verify", "-CAfile", str(ca), flag, name, str(cert)],
                          capture_output=True, text=True, timeout=30)


def test_setup_makes_a_private_ca_and_a_certificate_for_every_sip_name(tmp_path):
    cfg = _cfg(tmp_path, tls_names=["sip.12348.example", "10.20.30.40"])
    f = ensure_tls(cfg, log=lambda *_: None)
    for key in (f.ca_key, f.key):
        assert stat.S_IMODE(key.stat().st_mode) == 0o600
    assert stat.S_IMODE(f.ca_cert.parent.stat().st_mode) == 0o700
    assert cert_names(f.cert) == {"IP:127.0.0.1", "DNS:localhost", "DNS:sip.12348.example", "IP:10.20.30.40"}
    for name in ("127.0.0.1", "localhost", "sip.12348.example", "10.20.30.40"):
        assert _verify(f.cert, f.ca_cert, name).returncode == 0, name
    assert _verify(f.cert, f.ca_cert, "evil.example").returncode != 0


def test_setup_keeps_valid_certificates_and_renews_what_changed_or_expires(tmp_path, monkeypatch):
    cfg = _cfg(tmp_path)
    f = ensure_tls(cfg, log=lambda *_: None)
    ca, cert = f.ca_cert.read_bytes(), f.cert.read_bytes()
    assert ensure_tls(cfg, log=lambda *_: None) == tls_files(cfg)
    assert (f.ca_cert.read_bytes(), f.cert.read_bytes()) == (ca, cert)          # idempotent

    # a new name for Asterisk: a new certificate from the same CA
    ensure_tls(_cfg(tmp_path, tls_names=["sip.12348.example"]), log=lambda *_: None)
    assert f.ca_cert.read_bytes() == ca and f.cert.read_bytes() != cert
    assert "DNS:sip.12348.example" in cert_names(f.cert)

    # a certificate about to expire is renewed (back to the first names: signed again, for 10 days)
    monkeypatch.setattr(tlsmod, "SERVER_DAYS", 10)       # under SERVER_RENEW_DAYS
    ensure_tls(cfg, log=lambda *_: None)
    assert subprocess.run(["openssl", "x509", "-in", str(f.cert), "-noout", "-checkend", str(30 * 86400)],
                          capture_output=True).returncode != 0
    short = f.cert.read_bytes()
    monkeypatch.undo()
    ensure_tls(cfg, log=lambda *_: None)
    assert f.cert.read_bytes() != short and f.ca_cert.read_bytes() == ca

    # a lost CA key: a new CA, and the certificate is signed again by it
    f.ca_key.unlink()
    ensure_tls(cfg, log=lambda *_: None)
    assert f.ca_cert.read_bytes() != ca
    assert _verify(f.cert, f.ca_cert, "127.0.0.1").returncode == 0


# ---------------------------------------------------------------- standard phones
def test_baresip_config_on_tls_verifies_asterisk_and_insists_on_srtp(tmp_path):
    cfg = load_config(overrides={"phones": {"transport": "tls"}})
    ca = tmp_path / "ca.pem"
    files = baresip_files(cfg, "agent1001", "pw", 5092, ca=ca)
    assert f"sip_cafile {ca}\n" in files["config"] and "sip_verify_server yes\n" in files["config"]
    assert "module srtp.so\n" in files["config"]
    account = files["accounts"]
    assert account.startswith("<sip:agent1001@127.0.0.1:5061;transport=tls>;auth_pass=pw;")
    assert ";mediaenc=srtp-mand" in account
    plain = baresip_files(cfg, "agent1001", "pw", 5092)
    assert "mediaenc" not in plain["accounts"] and "sip_cafile" not in plain["config"]


def test_linphone_config_on_tls_verifies_asterisk_and_insists_on_srtp(tmp_path):
    cfg = load_config(overrides={"phones": {"transport": "tls"}})
    rc = linphone_rc(cfg, "agent1001", "pw", 5093, ca=tmp_path / "ca.pem")
    for line in (f"root_ca={tmp_path / 'ca.pem'}", "verify_server_certs=1", "verify_server_cn=1",
                 "media_encryption=srtp", "media_encryption_mandatory=1", "sip_tls_port=5093", "sip_port=-1",
                 "reg_proxy=<sip:127.0.0.1:5061;transport=tls>"):
        assert f"\n{line}\n" in rc, line
