"""Asterisk runs as its own unprivileged user with no capability, in the tests as in production, and
its files are shared with our daemons through the group."""
import os
import stat

from callcenter.asterisk.acl import blocklist_path
from callcenter.asterisk.runtime import asterisk_ids


def _status(pid: int) -> dict[str, str]:
    with open(f"/proc/{pid}/status") as f:
        return dict(line.rstrip("\n").split(":\t", 1) for line in f if ":\t" in line)


def test_asterisk_is_unprivileged(stack):
    uid, gid = asterisk_ids()
    st = _status(stack.asterisk.pid())
    assert st["Name"] == "asterisk"
    assert st["Uid"].split() == [str(uid)] * 4 and st["Gid"].split() == [str(gid)] * 4
    assert int(st["CapEff"], 16) == 0 and int(st["CapPrm"], 16) == 0


def test_instance_files_shared_through_the_group(stack):
    uid, gid = asterisk_ids()
    p = stack.asterisk.paths
    for d in (p.spool, p.monitor, p.log, p.lib, p.run):
        s = os.stat(p.host(d))
        assert (s.st_uid, s.st_gid) == (uid, gid), d
        assert stat.S_IMODE(s.st_mode) == 0o2770, d
    # the controller (another user in production) writes the blocklist through the group
    s = os.stat(p.host(blocklist_path(p)))
    assert s.st_gid == gid and s.st_mode & stat.S_IWGRP
    for secret in ("manager.conf", "pjsip.conf"):
        s = os.stat(p.host(p.etc / secret))
        assert s.st_uid == uid and stat.S_IMODE(s.st_mode) == 0o600
