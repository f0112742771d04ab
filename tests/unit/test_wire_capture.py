"""The load bench's wire timing (tests/sipp_load.py WireCapture): real packets on the loopback, captured by
tcpdump, read back into INVITE -> 200 OK times."""
import shutil
import socket
import time

import pytest

from tests.sipp_load import WireCapture, free_udp_port, read_pcap_udp

pytestmark = pytest.mark.skipif(shutil.which("tcpdump") is None,
                                reason="tcpdump is not installed (scripts/bootstrap.sh installs it)")


def sip(first: str, call_id: str, cseq: str = "1 INVITE") -> bytes:
    return f"{first}\r\nVia: SIP/2.0/UDP 127.0.0.1\r\nCall-ID: {call_id}\r\nCSeq: {cseq}\r\n\r\n".encode()


def test_setup_is_the_first_invite_to_its_200_ok(tmp_path):
    port = free_udp_port()
    capture = WireCapture(tmp_path / "wire.pcap", port)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as caller, \
            socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as server:
        caller.bind(("127.0.0.1", port))
        server.bind(("127.0.0.1", 0))
        caller.sendto(sip("INVITE sip:083312348@127.0.0.1 SIP/2.0", "a"), server.getsockname())
        time.sleep(0.02)
        caller.sendto(sip("INVITE sip:083312348@127.0.0.1 SIP/2.0", "a"), server.getsockname())  # retransmitted
        caller.sendto(sip("INVITE sip:083312348@127.0.0.1 SIP/2.0", "b"), server.getsockname())  # never answered
        server.sendto(sip("SIP/2.0 100 Trying", "a"), ("127.0.0.1", port))
        server.sendto(sip("SIP/2.0 200 OK", "a", "2 BYE"), ("127.0.0.1", port))     # not the INVITE's
        server.sendto(sip("SIP/2.0 200 OK", "a"), ("127.0.0.1", port))
        server.sendto(sip("SIP/2.0 200 OK", "c"), ("127.0.0.1", port))               # no INVITE seen
        time.sleep(0.01)
        server.sendto(sip("SIP/2.0 200 OK", "a"), ("127.0.0.1", port))               # a retransmitted 200
    capture.stop()
    packets = list(read_pcap_udp(tmp_path / "wire.pcap", port))
    assert len(packets) == 8 and [p[1] for p in packets[:3]] == [True] * 3
    times = capture.setup_times()
    assert len(times) == 1 and 20 <= times[0] < 1000     # from the first INVITE, to the first 200 OK to it
