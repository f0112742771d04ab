"""The blocked SIP addresses: a table Asterisk reads as PJSIP ACLs on every request (res_pjsip_acl over
sorcery realtime and res_config_sqlite3; confgen/system.py maps it), so a row refuses its address with
a 403 at once and deleting it lets the address in again, with no reload and no AMI privilege beyond
what the controller has. The controller writes it (callcenter/sipguard.py), the only writer.

Columns are only those Asterisk understands plus ``until``, which sorcery realtime leaves out of the
object: an empty ACL column would be a bad rule and Asterisk would drop the row, failing open."""
from __future__ import annotations

import ipaddress
import sqlite3
import time
from pathlib import Path

from core.paths import InstancePaths

TABLE = "ps_acls"
FILE = "sip-blocklist.sqlite3"


def blocklist_path(paths: InstancePaths) -> Path:
    """Where Asterisk (inside the chroot) reads it; ``paths.host()`` of it is where we write it."""
    return paths.lib / FILE


def network_of(address: str) -> str:
    """The block's unit: one IPv4 address, or an IPv6 /64 (one host's share of a typical subnet)."""
    ip = ipaddress.ip_address(address)
    net = ipaddress.ip_network(f"{ip}/{32 if ip.version == 4 else 64}", strict=False)
    return str(net)


class SipBlocklist:
    def __init__(self, path: Path):
        self.path = path

    def _connect(self) -> sqlite3.Connection:
        conn = sqlite3.connect(self.path, timeout=5, isolation_level=None)
        conn.execute("PRAGMA busy_timeout = 5000")
        return conn

    def ensure(self) -> None:
        """Create the table (idempotent). WAL: Asterisk's reads never wait for our writes."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self._connect() as conn:
            conn.execute("PRAGMA journal_mode = WAL")
            conn.execute(f"CREATE TABLE IF NOT EXISTS {TABLE} (id TEXT PRIMARY KEY, deny TEXT NOT NULL, "
                         "until REAL NOT NULL)")
        conn.close()

    def block(self, network: str, until: float) -> None:
        net = str(ipaddress.ip_network(network, strict=False))    # never a malformed rule
        with self._connect() as conn:
            conn.execute(f"INSERT OR REPLACE INTO {TABLE} (id, deny, until) VALUES (?, ?, ?)",
                         (f"blocked-{net}", net, until))
        conn.close()

    def unblock(self, network: str) -> bool:
        """Lift the block of a network, or of the unit an address belongs to."""
        net = str(ipaddress.ip_network(network, strict=False)) if "/" in network else network_of(network)
        with self._connect() as conn:
            n = conn.execute(f"DELETE FROM {TABLE} WHERE deny = ?", (net,)).rowcount
        conn.close()
        return n > 0

    def expire(self, now: float | None = None) -> list[str]:
        """Delete the blocks whose time is up; the networks let in again."""
        now = time.time() if now is None else now
        with self._connect() as conn:
            gone = [r[0] for r in conn.execute(f"SELECT deny FROM {TABLE} WHERE until <= ?", (now,))]
            conn.execute(f"DELETE FROM {TABLE} WHERE until <= ?", (now,))
        conn.close()
        return gone

    def blocked(self) -> dict[str, float]:
        """{network: until} of every block in force or not yet expired."""
        with self._connect() as conn:
            rows = conn.execute(f"SELECT deny, until FROM {TABLE}").fetchall()
        conn.close()
        return dict(rows)
