"""The node's private CA and Asterisk's TLS certificate, made with the openssl command line.

Kept beside the other generated credentials in ``<state_dir>/tls`` (a 0700 directory, private keys
0600). Idempotent: the CA is kept while it is valid for another CA_RENEW_DAYS; Asterisk's certificate
is signed again when it is missing, expires within SERVER_RENEW_DAYS, was not signed by the current CA
or does not name every address phones use (a changed sip_bind or tls_names).
"""
from __future__ import annotations

import ipaddress
import os
import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from core.config import HotlineConfig

CA_DAYS, CA_RENEW_DAYS = 3650, 180
SERVER_DAYS, SERVER_RENEW_DAYS = 730, 30


class TlsError(RuntimeError):
    """A certificate could not be made or read; the message says which and why."""


@dataclass(frozen=True)
class TlsFiles:
    ca_cert: Path      # what phones (and a carrier we sign for) verify Asterisk with
    ca_key: Path       # never leaves the node
    cert: Path         # Asterisk's certificate ...
    key: Path          # ... and its key


def tls_files(cfg: HotlineConfig) -> TlsFiles:
    d = cfg.state_dir / "tls"
    return TlsFiles(d / "ca.pem", d / "ca.key", d / "asterisk.pem", d / "asterisk.key")


def server_names(cfg: HotlineConfig) -> list[str]:
    """Every name a phone may connect to: the SIP address, loopback, and the configured names."""
    a = cfg.system.asterisk
    names = [] if a.sip_bind in ("0.0.0.0", "::") else [a.sip_bind]
    for n in ["127.0.0.1", "localhost", *a.tls_names]:
        if n not in names:
            names.append(n)
    return names


def _san(names: list[str]) -> str:
    def one(n: str) -> str:
        try:
            ipaddress.ip_address(n)
            return f"IP:{n}"
        except ValueError:
            return f"DNS:{n}"
    return ",".join(one(n) for n in names)


def _openssl(*args: str) -> str:
    if shutil.which("openssl") is None:
        raise TlsError("the openssl command is not installed (apt-get install openssl)")
    # keys are written 0600 from the start, never readable by others for a moment
    res = subprocess.run(["openssl", *args], capture_output=True, text=True, timeout=60,
                         preexec_fn=lambda: os.umask(0o077))
    if res.returncode != 0:
        raise TlsError(f"openssl {args[0]} failed: {res.stderr.strip()[-800:]}")
    return res.stdout


def _valid_for(cert: Path, days: int) -> bool:
    res = subprocess.run(["openssl", "x509", "-in", str(cert), "-noout", "-checkend", str(days * 86400)],
                         capture_output=True, text=True, timeout=30)
    return res.returncode == 0


def cert_names(cert: Path) -> set[str]:
    """The subjectAltName entries of a certificate, as "IP:…" / "DNS:…"."""
    out = _openssl("x509", "-in", str(cert), "-noout", "-ext", "subjectAltName")
    return {re.sub(r"^IP Address:", "IP:", part.strip()) for part in out.splitlines()[-1].split(",")
            if ":" in part}


def _signed_by(cert: Path, ca: Path) -> bool:
    res = subprocess.run(["openssl", "verify", "-CAfile", str(ca), str(cert)], capture_output=True, text=True,
                         timeout=30)
    return res.returncode == 0


def ensure_tls(cfg: HotlineConfig, log=print) -> TlsFiles:
    f = tls_files(cfg)
    f.ca_cert.parent.mkdir(parents=True, exist_ok=True)
    f.ca_cert.parent.chmod(0o700)
    if not (f.ca_key.exists() and f.ca_cert.exists() and _valid_for(f.ca_cert, CA_RENEW_DAYS)):
        _make_ca(cfg, f)
        log(f"tls: new CA {f.ca_cert} (phones need this file to trust Asterisk)")
    names = server_names(cfg)
    if not (f.key.exists() and f.cert.exists() and _valid_for(f.cert, SERVER_RENEW_DAYS)
            and _signed_by(f.cert, f.ca_cert) and cert_names(f.cert) == set(_san(names).split(","))):
        _make_server(f, names)
        log(f"tls: Asterisk certificate for {', '.join(names)}")
    for key in (f.ca_key, f.key):
        key.chmod(0o600)
    for cert in (f.ca_cert, f.cert):
        cert.chmod(0o644)
    return f


def _make_ca(cfg: HotlineConfig, f: TlsFiles) -> None:
    _openssl("req", "-x509", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
             "-keyout", str(f.ca_key), "-out", str(f.ca_cert), "-days", str(CA_DAYS), "-sha256",
             "-subj", f"/O=12348 hotline/CN=12348 hotline CA {cfg.system.node.name}",
             "-addext", "basicConstraints=critical,CA:TRUE,pathlen:0",
             "-addext", "keyUsage=critical,keyCertSign,cRLSign")
    # a new CA invalidates the old server certificate
    f.cert.unlink(missing_ok=True)


def _make_server(f: TlsFiles, names: list[str]) -> None:
    sign_certificate(f.ca_cert, f.ca_key, names, f.key, f.cert)


def issue_certificate(cfg: HotlineConfig, names: list[str], key: Path, cert: Path) -> None:
    """A certificate from the node's CA for another party, e.g. a test carrier that Asterisk calls over
    TLS and checks (trunk.transport tls without a tls_ca_file)."""
    f = ensure_tls(cfg, log=lambda *_: None)
    sign_certificate(f.ca_cert, f.ca_key, names, key, cert)


def sign_certificate(ca_cert: Path, ca_key: Path, names: list[str], key_out: Path, cert_out: Path) -> None:
    """A new P-256 key and a certificate for ``names`` (server and client use), signed by the CA."""
    with tempfile.TemporaryDirectory(dir=cert_out.parent) as tmp:
        csr, ext = Path(tmp) / "new.csr", Path(tmp) / "ext.cnf"
        key, cert = Path(tmp) / "new.key", Path(tmp) / "new.pem"
        _openssl("req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                 "-keyout", str(key), "-out", str(csr), "-subj", f"/O=12348 hotline/CN={names[0]}")
        ext.write_text(f"subjectAltName={_san(names)}\nbasicConstraints=critical,CA:FALSE\n"
                       "keyUsage=critical,digitalSignature,keyAgreement\n"
                       "extendedKeyUsage=serverAuth,clientAuth\n")
        _openssl("x509", "-req", "-in", str(csr), "-CA", str(ca_cert), "-CAkey", str(ca_key),
                 "-set_serial", str(int.from_bytes(os.urandom(16), "big") >> 1), "-days", str(SERVER_DAYS),
                 "-sha256", "-extfile", str(ext), "-out", str(cert))
        key.replace(key_out)
        cert.replace(cert_out)
        cert_out.chmod(0o644)
