"""tests/ami_threads.py, the soak's diagnosis of Asterisk's AMI session threads: it finds a thread by
the socket it polls, here in a real process standing in for Asterisk (a thread per session in poll())."""
import os
import socket
import subprocess
import sys
import textwrap
import time

import pytest

from tests.ami_threads import episodes, session_threads

SERVER = textwrap.dedent("""
    import select, socket, sys, threading
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen()
    print(srv.getsockname()[1], flush=True)
    def session(conn):
        p = select.poll()
        p.register(conn, select.POLLIN)
        p.poll()        # as Asterisk's session thread: asleep in poll() on its socket
    while True:
        conn, _ = srv.accept()
        threading.Thread(target=session, args=(conn,), daemon=True).start()
""")


@pytest.mark.skipif(not os.access("/proc/self/mem", os.R_OK), reason="needs /proc")
def test_finds_the_thread_polling_each_clients_socket():
    server = subprocess.Popen([sys.executable, "-c", SERVER], stdout=subprocess.PIPE, text=True)
    try:
        port = int(server.stdout.readline())
        mine = [socket.create_connection(("127.0.0.1", port)) for _ in range(2)]
        # a connection of another process: not ours
        other = subprocess.Popen([sys.executable, "-c", "import socket, time; "
                                  f"s = socket.create_connection(('127.0.0.1', {port})); time.sleep(60)"])
        deadline = time.monotonic() + 10
        found = {}
        while len(found) < 2 and time.monotonic() < deadline:
            try:
                found = session_threads(server.pid, port, os.getpid())
            except PermissionError:
                pytest.skip("reading another process's memory needs ptrace rights here")
            time.sleep(0.1)
        assert sorted(found.values()) == sorted(s.getsockname()[1] for s in mine)
        time.sleep(0.5)     # the other process's connection is polled by now as well
        assert session_threads(server.pid, port, os.getpid()) == found
        assert len(found) == 2 and server.pid not in found      # session threads, not the main one
        other.kill()
        other.wait()
        for s in mine:
            s.close()
    finally:
        server.kill()
        server.wait()


def test_late_events_grouped_into_episodes():
    # (arrival, Asterisk's stamp): two late within a second of each other, then three on time (under 0.3 s),
    # then one late alone
    timeline = [(10.6, 10.1), (11.0, 10.2), (10.01, 10.0), (11.1, 10.9), (11.05, 11.0), (20.5, 20.0)]
    assert episodes(timeline, late=0.3) == [(10.1, 11.0, 2, pytest.approx(0.8)), (20.0, 20.5, 1, 0.5)]
