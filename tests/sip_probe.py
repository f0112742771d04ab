"""A raw SIP-over-UDP client for probing Asterisk as a scanner would: one request, the whole answer
(status line and every header), and a digest answer to a challenge if a password is given. Tests compare
what a real and a made-up account get back, so nothing here hides a difference."""
from __future__ import annotations

import hashlib
import re
import secrets
import socket
from dataclasses import dataclass

SDP = ("v=0\r\no=probe 1 1 IN IP4 {ip}\r\ns=-\r\nc=IN IP4 {ip}\r\nt=0 0\r\n"
       "m=audio 40000 RTP/AVP 8\r\na=rtpmap:8 PCMA/8000\r\n")


@dataclass
class SipResponse:
    status: int
    reason: str
    headers: list[tuple[str, str]]

    def get(self, name: str) -> str | None:
        return next((v for k, v in self.headers if k.lower() == name.lower()), None)

    def names(self) -> list[str]:
        return sorted({k.lower() for k, _ in self.headers})

    @property
    def challenge(self) -> dict[str, str]:
        """The WWW-Authenticate parameters (empty if there is none)."""
        value = self.get("WWW-Authenticate") or ""
        return {k.lower(): v.strip('"') for k, v in re.findall(r'(\w+)=("[^"]*"|[^,\s]+)', value)}


def _parse(data: bytes) -> SipResponse:
    head = data.decode("utf-8", "replace").split("\r\n\r\n", 1)[0].split("\r\n")
    _, code, reason = (head[0].split(" ", 2) + [""])[:3]
    headers = []
    for line in head[1:]:
        name, _, value = line.partition(":")
        headers.append((name.strip(), value.strip()))
    return SipResponse(int(code), reason, headers)


class SipProbe:
    """Requests from ``src_ip`` (any 127/8 address on Linux) to Asterisk at ``server``."""

    def __init__(self, server: tuple[str, int], src_ip: str, timeout: float = 3):
        self.server = server
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind((src_ip, 0))
        self.sock.settimeout(timeout)
        self.local = self.sock.getsockname()

    def close(self) -> None:
        self.sock.close()

    def __enter__(self) -> "SipProbe":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def request(self, method: str, user: str, password: str | None = None, target: str | None = None,
                ) -> list[SipResponse]:
        """Send ``method`` as ``user``; answer a 401 once with ``password`` if given. Returns the final
        answers in order (one, or two when a challenge was answered); [] if Asterisk stayed silent."""
        host, port = self.server
        call_id, tag = secrets.token_hex(8), secrets.token_hex(4)
        uri = f"sip:{host}:{port}" if method == "REGISTER" else f"sip:{target or user}@{host}:{port}"
        answers: list[SipResponse] = []
        auth = ""
        for cseq in (1, 2):
            self._send(method, uri, user, call_id, tag, cseq, auth)
            resp = self._final(cseq, method)
            if resp is None:
                return answers
            answers.append(resp)
            if method == "INVITE" and resp.status >= 300:
                self._ack(uri, user, call_id, tag, cseq, resp)
            if resp.status != 401 or password is None or cseq == 2:
                return answers
            auth = "Authorization: " + _digest(resp.challenge, method, uri, user, password) + "\r\n"
        return answers

    def _send(self, method: str, uri: str, user: str, call_id: str, tag: str, cseq: int, extra: str) -> None:
        ip, lport = self.local
        host = self.server[0]
        body = SDP.format(ip=ip) if method == "INVITE" else ""
        msg = (f"{method} {uri} SIP/2.0\r\n"
               f"Via: SIP/2.0/UDP {ip}:{lport};rport;branch=z9hG4bK{secrets.token_hex(8)}\r\n"
               f"Max-Forwards: 70\r\n"
               f"From: <sip:{user}@{host}>;tag={tag}\r\n"
               f"To: <sip:{user if method == 'REGISTER' else uri[4:].split('@')[0]}@{host}>\r\n"
               f"Call-ID: {call_id}\r\nCSeq: {cseq} {method}\r\n"
               f"Contact: <sip:{user}@{ip}:{lport}>\r\n"
               + ("Expires: 60\r\n" if method == "REGISTER" else "")
               + ("Event: presence\r\nAccept: application/pidf+xml\r\nExpires: 60\r\n" if method == "SUBSCRIBE" else "")
               + ("Content-Type: application/sdp\r\n" if body else "")
               + extra + f"Content-Length: {len(body)}\r\n\r\n{body}")
        self.sock.sendto(msg.encode(), self.server)

    def _final(self, cseq: int, method: str) -> SipResponse | None:
        while True:
            try:
                data, _ = self.sock.recvfrom(65535)
            except socket.timeout:
                return None
            if not data.startswith(b"SIP/2.0 "):
                continue        # a request of Asterisk's own (a qualify OPTIONS to a registered contact)
            resp = _parse(data)
            if resp.get("CSeq") == f"{cseq} {method}" and resp.status >= 200:
                return resp

    def _ack(self, uri: str, user: str, call_id: str, tag: str, cseq: int, resp: SipResponse) -> None:
        ip, lport = self.local
        self.sock.sendto((f"ACK {uri} SIP/2.0\r\nVia: {resp.get('Via')}\r\nMax-Forwards: 70\r\n"
                          f"From: {resp.get('From')}\r\nTo: {resp.get('To')}\r\nCall-ID: {call_id}\r\n"
                          f"CSeq: {cseq} ACK\r\nContent-Length: 0\r\n\r\n").encode(), self.server)


def _digest(ch: dict[str, str], method: str, uri: str, user: str, password: str) -> str:
    """RFC 2617 MD5 digest with qop=auth when offered (what Asterisk's challenges ask for)."""
    def md5(s: str) -> str:
        return hashlib.md5(s.encode()).hexdigest()
    ha1, ha2 = md5(f"{user}:{ch['realm']}:{password}"), md5(f"{method}:{uri}")
    cnonce, nc = secrets.token_hex(8), "00000001"
    if "auth" in ch.get("qop", "").split(","):
        resp = md5(f"{ha1}:{ch['nonce']}:{nc}:{cnonce}:auth:{ha2}")
        qop = f', qop=auth, nc={nc}, cnonce="{cnonce}"'
    else:
        resp, qop = md5(f"{ha1}:{ch['nonce']}:{ha2}"), ""
    opaque = f', opaque="{ch["opaque"]}"' if "opaque" in ch else ""
    return (f'Digest username="{user}", realm="{ch["realm"]}", nonce="{ch["nonce"]}", uri="{uri}", '
            f'response="{resp}", algorithm=MD5{qop}{opaque}')
