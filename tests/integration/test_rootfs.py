"""The pinned Asterisk rootfs: its version record refuses anything but Asterisk 22, and a rootfs
exported on one host imports on another, checked against its manifest. The cached rootfs is only read:
the round trip runs on a copy of it."""
import subprocess
from pathlib import Path

import pytest

from callcenter.asterisk.rootfs import VERSION_FILE, RootfsError, check_version, export, import_, manifest_path
from callcenter.asterisk.runtime import ASTERISK_USER, AsteriskRuntimeError, asterisk_ids, ensure_rootfs
from core.config import load_config
from tests.config_tree import ROOT


@pytest.fixture(scope="module")
def rootfs_copy(tmp_path_factory) -> Path:
    cached = load_config(ROOT).resolve(load_config(ROOT).system.asterisk.rootfs)
    if not (cached / "usr/sbin/asterisk").exists():
        pytest.fail(f"no cached rootfs at {cached} (make test builds it)")
    copy = tmp_path_factory.mktemp("rootfs") / "rootfs"
    # the instances' own directories are not ours to copy (other workers' live Asterisks): never read,
    # since one that its worker removes mid-copy failed `cp -a` ("cannot stat") in a CI run
    copy.mkdir()
    pack = subprocess.Popen(["tar", "-C", str(cached), "--numeric-owner", "--exclude=./srv/hotline/*", "-cf", "-", "."],
                            stdout=subprocess.PIPE)
    subprocess.run(["tar", "-C", str(copy), "--numeric-owner", "-xpf", "-"], stdin=pack.stdout, check=True, timeout=300)
    pack.stdout.close()
    assert pack.wait(timeout=60) == 0
    assert (copy / "srv/hotline").is_dir() and not list((copy / "srv/hotline").iterdir())
    return copy


def test_version_and_user_added_to_an_old_rootfs(rootfs_copy):
    # a rootfs built before the record and the user: setup upgrades it in place, no rebuild
    (rootfs_copy / VERSION_FILE).unlink(missing_ok=True)
    passwd = rootfs_copy / "etc/passwd"
    passwd.write_text("".join(line for line in passwd.read_text().splitlines(keepends=True)
                              if not line.startswith(ASTERISK_USER + ":")))
    ensure_rootfs(rootfs_copy)
    line = (rootfs_copy / VERSION_FILE).read_text().strip()
    assert line.startswith("Asterisk 22."), line
    assert check_version(rootfs_copy) == line
    uid, gid = asterisk_ids()
    ensure_rootfs(rootfs_copy)                               # idempotent
    assert (rootfs_copy / VERSION_FILE).read_text().strip() == line
    entries = [e for e in passwd.read_text().splitlines() if e.startswith(ASTERISK_USER + ":")]
    assert len(entries) == 1 and entries[0].split(":")[2:4] == [str(uid), str(gid)]
    # the same numbers inside: chroot --userspec runs the rootfs's own id(1) as that user
    res = subprocess.run(["chroot", f"--userspec={uid}:{gid}", str(rootfs_copy), "id", "-un"], capture_output=True,
                         text=True, timeout=30)
    assert res.stdout.strip() == ASTERISK_USER


def test_another_major_is_refused(tmp_path):
    fake = tmp_path / "rootfs"
    (fake / "usr/sbin").mkdir(parents=True)
    (fake / "usr/sbin/asterisk").write_text("")
    (fake / ".hotline-rootfs-ok").write_text("ok\n")
    (fake / VERSION_FILE).write_text("Asterisk 20.1.0\n")
    with pytest.raises(RootfsError, match=r"holds Asterisk 20\.1\.0; this release needs Asterisk 22"):
        check_version(fake)
    with pytest.raises(AsteriskRuntimeError, match="needs Asterisk 22"):
        ensure_rootfs(fake)


def test_export_import_round_trip(rootfs_copy, tmp_path):
    ensure_rootfs(rootfs_copy)
    archive = tmp_path / "asterisk-rootfs.tar.zst"
    version = export(rootfs_copy, archive)
    assert version.startswith("Asterisk 22.")
    sums = manifest_path(archive).read_text()
    assert sums.split()[1] == archive.name and version in sums
    # sha256sum checks it too: the manifest is the standard format
    subprocess.run(["sha256sum", "--check", "--quiet", manifest_path(archive).name], cwd=tmp_path, check=True)

    target = tmp_path / "imported"
    assert import_(archive, target) == version
    res = subprocess.run(["chroot", str(target), "/usr/sbin/asterisk", "-V"], capture_output=True, text=True,
                         timeout=30)
    assert res.stdout.strip() == version
    assert (target / "usr/lib").exists() and not list((target / "srv/hotline").iterdir())


def test_a_damaged_or_wrong_archive_is_refused(tmp_path):
    # a minimal tree recording another major, exported by hand with a correct manifest
    tree = tmp_path / "tree"
    (tree / "usr/sbin").mkdir(parents=True)
    (tree / VERSION_FILE).write_text("Asterisk 20.1.0\n")
    archive = tmp_path / "old.tar.gz"
    subprocess.run(["tar", "--gzip", "-cf", str(archive), "-C", str(tree), "."], check=True)
    digest = subprocess.run(["sha256sum", archive.name], cwd=tmp_path, capture_output=True, text=True).stdout
    manifest_path(archive).write_text(digest)
    target = tmp_path / "rootfs"
    with pytest.raises(RootfsError, match="needs Asterisk 22"):
        import_(archive, target)
    assert not target.exists() and not (tmp_path / "rootfs.importing").exists()

    # one byte changed after export: refused before anything is unpacked
    data = bytearray(archive.read_bytes())
    data[-1] ^= 1
    archive.write_bytes(bytes(data))
    with pytest.raises(RootfsError, match="sha256"):
        import_(archive, target)
    manifest_path(archive).unlink()
    with pytest.raises(RootfsError, match="no manifest"):
        import_(archive, target)
