"""Agents' phones over SIP/TLS with SRTP (phones.transport: tls) and the carrier trunk over TLS
(trunk.transport: tls) on a real Asterisk: the pjsua2 agent (`hotline agent`) and baresip (`hotline
phone-config`) register over TLS checking Asterisk's certificate against the node's CA from `hotline
setup`; a carrier's caller (`hotline call`, over TLS) reaches the agent, and the RTP between Asterisk and
the agent, read off the loopback interface, is encrypted while the carrier's leg is plain RTP."""
from __future__ import annotations

import shutil
import socket
import stat
import struct
import subprocess
import sys
import threading
import time
import wave
from array import array
from pathlib import Path

import pytest

from simulators.audio import tone_presence, tone_wav
from store.tls import issue_certificate, sign_certificate
from tests.helpers import ROOT, Stack, finished_wav, free_port, free_port_pair, fresh, terminate, wait_for

AGENT_HZ, CALLER_HZ = 1000, 600


@pytest.fixture(scope="module")
def tls_stack(tmp_path_factory):
    if shutil.which("chroot") is None or shutil.which("espeak-ng") is None:
        pytest.fail("the real-stack tests need chroot and espeak-ng (run `make test`, which installs them)")
    s = Stack(tmp_path_factory.mktemp("tls"))
    s.overrides["phones"] = {"transport": "tls"}
    s.overrides["trunk"]["transport"] = "tls"      # the simulated carrier (`hotline call`) on TLS as well
    s.reconfigure()
    try:
        s.start()
        yield s
    finally:
        s.close()


@pytest.fixture
def tls(tls_stack):
    with fresh(tls_stack):
        yield tls_stack


@pytest.fixture(scope="module")
def tones(tmp_path_factory):
    d = tmp_path_factory.mktemp("tones")
    return {"agent": tone_wav(AGENT_HZ, 40, d / "agent.wav"), "caller": tone_wav(CALLER_HZ, 40, d / "caller.wav")}


# ---------------------------------------------------------------- what is on the wire
class RtpSniffer(threading.Thread):
    """RTP packets on the loopback interface (a raw AF_PACKET socket: the tests run as root) whose
    source or destination port is one of ``ports``: {(src port, dst port): [(payload type, payload)]}."""

    def __init__(self, ports: range):
        super().__init__(daemon=True)
        self.ports = ports
        self.flows: dict[tuple[int, int], list[tuple[int, bytes]]] = {}
        self.stop = threading.Event()
        self.sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(0x0003))
        self.sock.bind(("lo", 0))
        self.sock.settimeout(0.2)

    def run(self) -> None:
        while not self.stop.is_set():
            try:
                data, addr = self.sock.recvfrom(65535)
            except TimeoutError:
                continue
            if addr[2] == socket.PACKET_OUTGOING:      # each loopback packet is seen going out and coming in
                continue
            ip = data[14:]
            if len(ip) < 28 or ip[0] >> 4 != 4 or ip[9] != 17:
                continue
            udp = ip[(ip[0] & 15) * 4:]
            sport, dport = struct.unpack("!HH", udp[:4])
            rtp = udp[8:]
            if (sport in self.ports or dport in self.ports) and len(rtp) > 12 and rtp[0] >> 6 == 2:
                header = 12 + 4 * (rtp[0] & 15)
                self.flows.setdefault((sport, dport), []).append((rtp[1] & 0x7f, rtp[header:]))

    def close(self) -> None:
        self.stop.set()
        self.join(2)
        self.sock.close()


def _alaw(byte: int) -> int:
    """G.711 A-law to linear (ITU-T G.711)."""
    a = byte ^ 0x55
    t, seg = (a & 0x0f) << 4, (a & 0x70) >> 4
    t = t + 8 if seg == 0 else (t + 0x108 if seg == 1 else (t + 0x108) << (seg - 1))
    return t if a & 0x80 else -t


def _as_heard(packets: list[tuple[int, bytes]], dest: Path) -> Path:
    """The A-law payloads of a flow decoded as if they were clear audio, to a WAV file."""
    samples = array("h", (_alaw(b) for pt, payload in packets if pt == 8 for b in payload[:160]))
    with wave.open(str(dest), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(8000)
        w.writeframes(samples.tobytes())
    return dest


def _ami_getvar(s: Stack, channel: str, variable: str) -> str:
    """One Getvar over a plain AMI connection (login with the generated secret)."""
    with socket.create_connection(("127.0.0.1", s.cfg.system.asterisk.ami_port), timeout=10) as sock:
        f = sock.makefile("rwb")
        f.readline()   # banner

        def send(**headers) -> None:
            f.write(("".join(f"{k}: {v}\r\n" for k, v in headers.items()) + "\r\n").encode())
            f.flush()

        def reply(action_id: str) -> dict[str, str]:
            while True:
                msg: dict[str, str] = {}
                for line in iter(f.readline, b"\r\n"):
                    key, _, value = line.decode().partition(":")
                    msg[key.strip()] = value.strip()
                if msg.get("ActionID") == action_id:
                    return msg
        send(Action="Login", Username=s.secrets.ami_user, Secret=s.secrets.ami_secret, Events="off", ActionID="l")
        assert reply("l")["Response"] == "Success"
        send(Action="Getvar", Channel=channel, Variable=variable, ActionID="g")
        return reply("g").get("Value", "")


def _contact(s: Stack, account: str) -> str:
    """The contact URI an account registered, in full (`pjsip show contacts` cuts it short)."""
    for line in s.asterisk.rx(f"pjsip show aor {account}").splitlines():
        key, _, value = line.partition(":")
        if key.strip() == "contact":
            return value.strip()
    return ""


def _channel_of(s: Stack, account: str) -> str:
    for line in s.asterisk.rx("core show channels concise").splitlines():
        if line.startswith(f"PJSIP/{account}-"):
            return line.split("!", 1)[0]
    return ""


# ---------------------------------------------------------------- tests
def test_the_agent_phone_registers_over_tls_and_takes_a_call_with_srtp(tls, tones, tmp_path):
    s = tls
    a = s.cfg.system.asterisk
    agent = s.agent("agent1001", play=tones["agent"], record_dir=tmp_path / "agent")
    assert "transport=tls" in _contact(s, "agent1001").lower()

    sniffer = RtpSniffer(range(a.rtp_start, a.rtp_end + 1))
    sniffer.start()
    try:
        caller_rec = tmp_path / "caller.wav"
        caller = s.call("083312348", dtmf="2:1,4:1", play=tones["caller"], record=caller_rec, hangup_after=20,
                        caller="13911112001")
        confirmed = agent.wait_event("answered", 60) and wait_for(
            lambda: next((e for e in agent.read() if e["event"] == "call_state" and e["state"] == "confirmed"), None),
            20, "the agent's call confirmed")
        # Asterisk's side: the agent's channel has encrypted media
        channel = wait_for(lambda: _channel_of(s, "agent1001"), 10, "the agent's channel")
        assert _ami_getvar(s, channel, "CHANNEL(rtp,secure,audio)") == "1"
        assert _ami_getvar(s, channel, "CHANNEL(pjsip,secure)") == "1"
        # the carrier's leg: signalling over TLS (trunk.transport tls), media plain RTP
        trunk = _channel_of(s, s.cfg.system.trunk.name)
        assert _ami_getvar(s, trunk, "CHANNEL(pjsip,secure)") == "1"
        assert _ami_getvar(s, trunk, "CHANNEL(rtp,secure,audio)") == "0"
        result = caller.result(timeout=90)
    finally:
        sniffer.close()
    assert result["answered"]
    # the phone's side: the stream it negotiated is SRTP (RTP/SAVP with an SDES key)
    assert confirmed["media"] == "RTP/SAVP", confirmed
    agent_port = int(confirmed["local_rtp"].rsplit(":", 1)[1])

    # on the wire: the agent's leg carries RTP both ways, and no tone can be heard in it; the carrier's
    # plain RTP leg, decoded the same way, carries the agent's tone (the decoding would have found it)
    agent_leg = {k: v for k, v in sniffer.flows.items() if agent_port in k}
    assert len(agent_leg) == 2 and all(len(p) > 100 for p in agent_leg.values()), \
        {k: len(v) for k, v in sniffer.flows.items()}
    for (src, dst), packets in agent_leg.items():
        heard = _as_heard(packets, tmp_path / f"leg-{src}-{dst}.wav")
        assert tone_presence(heard, AGENT_HZ) < 0.1 and tone_presence(heard, CALLER_HZ) < 0.1, (src, dst)
    to_caller = [_as_heard(p, tmp_path / f"clear-{src}-{dst}.wav") for (src, dst), p in sniffer.flows.items()
                 if agent_port not in (src, dst) and src in range(a.rtp_start, a.rtp_end + 1)]
    assert any(tone_presence(w, AGENT_HZ) > 0.5 for w in to_caller), "the clear leg did not carry the agent's tone"

    # and the audio got through the encrypted leg, both ways
    rec = s.wait_record(lambda r: r["caller_number"] == "13911112001" and r["status"] == "ended")
    assert rec["agent"] == "agent1001" and rec["outcome"] == "answered"
    assert tone_presence(finished_wav(tmp_path / "agent"), CALLER_HZ) > 0.5, "the agent did not hear the caller"
    assert tone_presence(caller_rec, AGENT_HZ) > 0.3, "the caller did not hear the agent"


def _other_ca(tmp_path: Path) -> tuple[Path, Path]:
    """A CA that is not the node's."""
    ca, key = tmp_path / "other-ca.pem", tmp_path / "other-ca.key"
    subprocess.run(["openssl", "req", "-x509", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
                    "-nodes", "-keyout", str(key), "-out", str(ca), "-days", "2", "-subj", "/CN=somebody else's CA",
                    "-addext", "basicConstraints=critical,CA:TRUE"], check=True, capture_output=True, timeout=30)
    return ca, key


@pytest.mark.parametrize("signer", ["node", "other"])
def test_a_callback_reaches_the_carrier_over_tls_only_if_its_certificate_checks_out(tls, tones, tmp_path, signer):
    """trunk.transport tls: Asterisk calls the carrier over TLS and checks its certificate (verify_server,
    against the node's CA here: no tls_ca_file); a carrier showing another CA's certificate gets no call."""
    s = tls
    key, cert = tmp_path / "carrier.key", tmp_path / "carrier.pem"
    if signer == "node":
        issue_certificate(s.cfg, ["127.0.0.1"], key, cert)
    else:
        sign_certificate(*_other_ca(tmp_path), ["127.0.0.1"], key, cert)
    s.agent("agent1001", play=tones["agent"], login=False)
    s.api("/api/agents/agent1001/login", "POST", {"ready": False})   # paused: the caller waits and asks for a callback
    number = f"1395555001{1 if signer == 'node' else 2}"
    x = s.call("083312348", dtmf="2:1,4:1,20:5", play=tones["caller"], hangup_after=60, caller=number,
               extra=["--port", str(s.carrier_port), "--await-callback", "90" if signer == "node" else "25",
                      "--callback-talk", "6", "--callback-record", str(tmp_path / "callback.wav"),
                      "--cert", str(cert), "--key", str(key)])
    s.wait_record(lambda r: r["caller_number"] == number and r["outcome"] == "callback_requested", 60)
    s.api("/api/agents/agent1001/ready", "POST", {})
    res = x.result(150)
    if signer == "other":
        assert not (res["callback"] and res["callback"]["answered"]), res
        log = s.asterisk.paths.host(s.asterisk.paths.log / "messages.log").read_text(errors="replace")
        # refused for the reason that matters: Asterisk checked the carrier's certificate
        assert f"127.0.0.1:{s.carrier_port} - The certificate is untrusted" in log
        return
    assert res["callback"] and res["callback"]["answered"], res
    assert tone_presence(tmp_path / "callback.wav", AGENT_HZ) > 0.3, "the callback carried no audio"


def test_asterisk_gets_its_own_key_and_never_the_cas(tls):
    p = tls.asterisk.paths
    keys = p.host(p.keys)
    assert stat.S_IMODE(keys.stat().st_mode) == 0o700
    assert stat.S_IMODE((keys / "asterisk.key").stat().st_mode) == 0o600
    assert sorted(f.name for f in keys.iterdir()) == ["asterisk.key", "asterisk.pem", "ca.pem"]
    assert stat.S_IMODE((tls.cfg.state_dir / "tls" / "ca.key").stat().st_mode) == 0o600
    ca_key = (tls.cfg.state_dir / "tls" / "ca.key").read_text()
    assert ca_key not in "".join(f.read_text() for f in keys.iterdir())


def test_the_agent_refuses_an_asterisk_its_ca_did_not_sign(tls, tmp_path):
    other_ca, _ = _other_ca(tmp_path)
    party = tls._spawn(["agent", "--id", "agent1002", "--ca", str(other_ca), "--duration", "20"], "agent1002")
    failed = party.wait_event("register_failed", 25)
    assert failed["status"] != 200
    assert _contact(tls, "agent1002") == ""


def test_a_phone_on_plain_udp_gets_no_call_and_cannot_call(tls, tones, tmp_path):
    """TLS required: a phone that registers over UDP is never called (Asterisk reaches agents only over
    TLS) and a call it places without SRTP is refused (488), while the same call from TLS is SRTP."""
    s = tls
    party = s._spawn(["agent", "--id", "agent1002", "--transport", "udp", "--auto-answer", "--commands"],
                     "agent1002-udp", stdin=True)
    party.wait_event("registered", 20)
    party.send("dial *43")      # the echo test
    ended = wait_for(lambda: next((e for e in party.read() if e["event"] == "call_state"
                                   and e["state"] == "disconnected"), None), 20, "the UDP phone's call refused")
    assert ended["status"] == 488, ended
    secure = s._spawn(["agent", "--id", "agent1003", "--commands"], "agent1003-tls", stdin=True)
    secure.wait_event("registered", 20)
    secure.send("dial *43")
    confirmed = wait_for(lambda: next((e for e in secure.read() if e["event"] == "call_state"
                                       and e["state"] == "confirmed"), None), 20, "the TLS phone's echo test")
    assert confirmed["media"] == "RTP/SAVP"
    secure.send("hangup")
    # pjsip has no per-endpoint filter on the transport a REGISTER came in on: the contact is stored,
    # but Asterisk reaches agents only over TLS, so it never answers a qualify and stays unavailable
    assert "transport=tls" not in _contact(s, "agent1002").lower()
    wait_for(lambda: "Unavail" in next((line for line in s.asterisk.rx("pjsip show contacts").splitlines()
                                          if "agent1002/" in line), ""), 15, "the UDP contact unavailable")
    s.api("/api/agents/agent1002/login", "POST", {"ready": True})
    caller = s.call("083312348", dtmf="2:1,4:1", play=tones["caller"], hangup_after=14, caller="13911112002")
    caller.result(timeout=60)
    assert not any(e["event"] == "incoming" for e in party.read()), "a phone on plain UDP was given a call"
    rec = s.wait_record(lambda r: r["caller_number"] == "13911112002" and r["status"] == "ended")
    assert rec["agent"] in (None, "")


def test_baresip_with_the_generated_config_takes_a_call_over_tls_and_srtp(tls, tones, tmp_path):
    if shutil.which("baresip") is None:
        pytest.fail("baresip is not installed (make test installs baresip-core)")
    s = tls
    conf, heard = tmp_path / "baresip", tmp_path / "heard"
    heard.mkdir()
    res = subprocess.run([sys.executable, "-m", "hotline.cli", "phone-config", "--id", "agent1002", "--kind",
                          "baresip", "--out", str(conf), "--port", str(free_port_pair()), "--play", str(tones["agent"]),
                          "--record-dir", str(heard)],
                         cwd=ROOT, env=s.env, capture_output=True, text=True, timeout=30)
    assert res.returncode == 0, res.stderr
    accounts = (conf / "accounts").read_text()
    assert ";transport=tls>" in accounts and "mediaenc=srtp-mand" in accounts
    assert (conf / "ca.pem").read_text() == (s.cfg.state_dir / "tls" / "ca.pem").read_text()
    phone = subprocess.Popen(["baresip", "-f", str(conf)], stdout=open(tmp_path / "baresip.log", "wb"),
                             stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    try:
        contact = wait_for(lambda: _contact(s, "agent1002"), 20, "baresip registered", log=tmp_path / "baresip.log")
        assert "transport=tls" in contact.lower()
        s.api("/api/agents/agent1002/login", "POST", {"ready": True})
        caller_rec = tmp_path / "caller.wav"
        caller = s.call("02812348", dtmf="2:1,4:1,6:1", play=tones["caller"], record=caller_rec, hangup_after=20,
                        caller="13911112003")
        channel = wait_for(lambda: _channel_of(s, "agent1002"), 60, "baresip's channel", log=tmp_path / "baresip.log")
        wait_for(lambda: _ami_getvar(s, channel, "CHANNEL(rtp,secure,audio)") == "1", 10, "SRTP on baresip's leg")
        assert caller.result(90)["answered"]
        rec = s.wait_record(lambda r: r["caller_number"] == "13911112003" and r["status"] == "ended")
        assert rec["agent"] == "agent1002"
        assert tone_presence(caller_rec, AGENT_HZ) > 0.3, "the caller did not hear baresip"
        time.sleep(1)
        dec = sorted(heard.glob("*-dec.wav"))
        assert dec and tone_presence(dec[-1], CALLER_HZ) > 0.3, "baresip did not hear the caller"
    finally:
        terminate(phone, 5)
