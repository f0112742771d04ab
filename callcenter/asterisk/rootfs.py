"""The Asterisk rootfs as an artefact: its recorded Asterisk version (major 22 only) and the tarball a
site pins and copies to its other hosts (``hotline rootfs export`` / ``import``).

The build (debootstrap of Debian unstable) gives whatever Asterisk sid has that day; the record says
which one a rootfs holds, and the tarball lets a site keep a rootfs that it has tested."""
from __future__ import annotations

import hashlib
import re
import shutil
import subprocess
from pathlib import Path

MAJOR = 22
VERSION_FILE = ".hotline-asterisk-version"
READY_FILE = ".hotline-rootfs-ok"
_VERSION = re.compile(r"Asterisk\s+(\d+)\.(\d+)(?:\.(\d+))?\S*")


class RootfsError(RuntimeError):
    """The rootfs holds the wrong Asterisk, or an archive is damaged; the message says what to do."""


def parse_version(text: str) -> tuple[str, int]:
    """``asterisk -V`` output -> (the version line, its major number)."""
    m = _VERSION.search(text)
    if not m:
        raise RootfsError(f"not an Asterisk version: {text.strip()[:200]!r}")
    return m.group(0), int(m.group(1))


def read_version(rootfs: Path) -> str:
    """Ask the Asterisk binary of the rootfs (inside the chroot, so its own libraries answer)."""
    res = subprocess.run(["chroot", str(rootfs), "/usr/sbin/asterisk", "-V"], capture_output=True, text=True,
                         timeout=30)
    if res.returncode != 0:
        raise RootfsError(f"`asterisk -V` failed in {rootfs}: {(res.stderr or res.stdout).strip()[:500]}")
    return parse_version(res.stdout)[0]


def check_version(rootfs: Path, record: bool = True) -> str:
    """The recorded version, recorded first if the rootfs predates the record (``record``), refused
    unless its major is 22: the generated configs and the dialplan are written for Asterisk 22."""
    path = rootfs / VERSION_FILE
    if path.exists():
        line = path.read_text().strip()
    elif record:
        line = read_version(rootfs)
        path.write_text(line + "\n")
    else:
        line = read_version(rootfs)
    version, major = parse_version(line)
    if major != MAJOR:
        raise RootfsError(f"{rootfs} holds {version}; this release needs Asterisk {MAJOR}. Rebuild the rootfs "
                          f"(move {rootfs} away and run `hotline setup`; pin a dated Debian snapshot with "
                          f"asterisk.debian_mirror) or import a known-good one (`hotline rootfs import FILE`)")
    return version


def _sha256(path: Path) -> str:
    with open(path, "rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


def _compression(archive: Path) -> list[str]:
    name = archive.name
    if name.endswith(".tar.zst"):
        return ["--zstd"]
    if name.endswith((".tar.gz", ".tgz")):
        return ["--gzip"]
    if name.endswith(".tar"):
        return []
    raise RootfsError(f"{archive}: name it .tar.zst, .tar.gz or .tar")


def manifest_path(archive: Path) -> Path:
    return archive.with_name(archive.name + ".sha256")


def export(rootfs: Path, archive: Path) -> str:
    """Write the rootfs (without the instances' own files: configs, secrets, spools) to ``archive`` and
    its manifest ``archive.sha256`` (sha256sum format, plus the Asterisk version). Returns the version."""
    if not (rootfs / READY_FILE).exists():
        raise RootfsError(f"{rootfs} is not a finished rootfs (no {READY_FILE}): run `hotline setup` first")
    version = check_version(rootfs)
    archive.parent.mkdir(parents=True, exist_ok=True)
    tmp = archive.with_name(archive.name + ".part")
    # numeric owners: the hosts' user tables differ; instances' directories stay behind
    res = subprocess.run(["tar", *_compression(archive), "--create", "--file", str(tmp), "--numeric-owner",
                          "--xattrs", "--exclude=./srv/hotline/*", "--exclude=./usr/share/asterisk/sounds/*/hl-*",
                          "-C", str(rootfs), "."], capture_output=True, text=True)
    if res.returncode != 0:
        tmp.unlink(missing_ok=True)
        raise RootfsError(f"tar failed: {res.stderr.strip()[-1000:]}")
    tmp.replace(archive)
    manifest_path(archive).write_text(f"{_sha256(archive)}  {archive.name}\n# {version}\n")
    return version


def import_(archive: Path, rootfs: Path) -> str:
    """Unpack a pinned rootfs after checking its manifest and its Asterisk; the current rootfs is
    replaced only once the new one is complete. Returns the version."""
    manifest = manifest_path(archive)
    if not manifest.exists():
        raise RootfsError(f"no manifest {manifest}: export writes it beside the archive; copy both")
    expected = manifest.read_text().split()[0]
    actual = _sha256(archive)
    if actual != expected:
        raise RootfsError(f"{archive}: sha256 {actual} is not {expected} from {manifest.name}: damaged or not "
                          "the exported file")
    tmp = rootfs.with_name(rootfs.name + ".importing")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    res = subprocess.run(["tar", *_compression(archive), "--extract", "--file", str(archive), "--numeric-owner",
                          "--xattrs", "-C", str(tmp)], capture_output=True, text=True)
    if res.returncode != 0:
        shutil.rmtree(tmp, ignore_errors=True)
        raise RootfsError(f"tar failed: {res.stderr.strip()[-1000:]}")
    try:
        recorded = check_version(tmp, record=False)
        # the record must be the binary's own answer, not just a file that says 22
        if parse_version(read_version(tmp))[0] != recorded:
            raise RootfsError(f"{archive}: recorded {recorded} but its asterisk binary says otherwise")
    except RootfsError:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    if rootfs.exists():
        old = rootfs.with_name(rootfs.name + ".replaced")
        shutil.rmtree(old, ignore_errors=True)
        # the instances' own files (astdb with pending callbacks, voicemail, recordings) move across
        if (rootfs / "srv/hotline").is_dir():
            shutil.rmtree(tmp / "srv/hotline", ignore_errors=True)
            (tmp / "srv").mkdir(exist_ok=True)
            (rootfs / "srv/hotline").rename(tmp / "srv/hotline")
        rootfs.rename(old)
        tmp.rename(rootfs)
        shutil.rmtree(old, ignore_errors=True)
    else:
        tmp.rename(rootfs)
    return recorded
