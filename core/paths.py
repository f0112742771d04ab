"""Where an Asterisk instance lives inside the shared rootfs.

Several instances (the demo, each test session) share one debootstrapped rootfs; each has its
own etc/spool/run/log/lib under /srv/hotline/<instance>, selected with ``asterisk -C``.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class InstancePaths:
    rootfs: Path
    name: str

    @property
    def inner(self) -> Path:
        """The instance directory as Asterisk (inside the chroot) sees it."""
        return Path("/srv/hotline") / self.name

    def host(self, inner_path: Path | str) -> Path:
        """Map a path inside the chroot to the host."""
        return self.rootfs / str(inner_path).lstrip("/")

    @property
    def etc(self) -> Path:
        return self.inner / "etc"

    @property
    def conf_file(self) -> Path:
        return self.etc / "asterisk.conf"

    @property
    def keys(self) -> Path:
        """Asterisk's TLS certificate and key, and the CAs it trusts (copied here by install)."""
        return self.etc / "keys"

    @property
    def sounds(self) -> Path:
        return self.inner / "sounds"

    @property
    def moh(self) -> Path:
        return self.inner / "moh"

    @property
    def spool(self) -> Path:
        return self.inner / "spool"

    @property
    def monitor(self) -> Path:
        return self.spool / "monitor"

    @property
    def log(self) -> Path:
        return self.inner / "log"

    @property
    def run(self) -> Path:
        return self.inner / "run"

    @property
    def lib(self) -> Path:
        return self.inner / "lib"

    def recording_host_path(self, relative: str) -> Path:
        """A MixMonitor file name relative to the monitor dir, on the host."""
        return self.host(self.monitor / relative)
