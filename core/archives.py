"""Which members of a downloaded archive may be unpacked: pure rules, no file access."""
from __future__ import annotations

from pathlib import PurePosixPath


def member_problem(name: str, is_link: bool = False) -> str | None:
    """Why an archive member must not be unpacked (zip-slip and friends), or None if it is safe.

    An archive comes from the network: a member named ``../../etc/cron.d/x`` or ``/etc/passwd``, or a
    symlink that a later member writes through, would land outside the directory it is unpacked into."""
    if is_link:
        return f"{name!r} is a link"
    if not name or "\x00" in name:
        return f"{name!r} is not a file name"
    if "\\" in name or (len(name) > 1 and name[1] == ":"):
        return f"{name!r} is a Windows path"      # zipfile would turn "..\\x" into a parent path on some systems
    path = PurePosixPath(name)
    if path.is_absolute():
        return f"{name!r} is an absolute path"
    if ".." in path.parts:
        return f"{name!r} leaves the directory"
    return None
