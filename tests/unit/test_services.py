"""`hotline install-services`: the systemd units pass `systemd-analyze verify` (offline: no systemd as
PID 1 here, so no generators and no man pages), and each carries the sandbox and restart policy."""
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from core.config import load_config
from hotline.services import ASTERISK_UNIT, DAEMON_UNITS, TARGET, units
from tests.config_tree import ROOT

ANALYZE = "/usr/bin/systemd-analyze"


def _write(tmp_path: Path, overrides: dict | None = None) -> dict[str, str]:
    cfg = load_config(ROOT, {"state_dir": str(tmp_path / "state"), **(overrides or {})})
    files = units(cfg, "hotline", 990, 990)
    for name, text in files.items():
        (tmp_path / name).write_text(text)
    return files


@pytest.mark.skipif(not Path(ANALYZE).exists(), reason="systemd-analyze is part of systemd")
def test_units_verify_offline(tmp_path):
    files = _write(tmp_path)
    assert set(files) == {TARGET, ASTERISK_UNIT, *DAEMON_UNITS.values()}
    res = subprocess.run([ANALYZE, "verify", "--man=no", "--generators=no", *(str(tmp_path / n) for n in files)],
                         capture_output=True, text=True, timeout=60)
    assert res.returncode == 0, res.stderr
    # warnings (unknown keys, bad values, missing binaries) go to stderr with exit 0 for some of them
    assert not [line for line in res.stderr.splitlines() if "hotline" in line], res.stderr


def test_a_broken_unit_fails_verify(tmp_path):
    """The check above can fail: a unit whose binary is missing does."""
    if not Path(ANALYZE).exists():
        pytest.skip("no systemd-analyze")
    text = _write(tmp_path)[ASTERISK_UNIT].replace(shutil.which("chroot") or "/usr/sbin/chroot", "/nonexistent/chroot")
    (tmp_path / ASTERISK_UNIT).write_text(text)
    res = subprocess.run([ANALYZE, "verify", "--man=no", "--generators=no", str(tmp_path / ASTERISK_UNIT)],
                         capture_output=True, text=True, timeout=60)
    assert res.returncode != 0 and "not executable" in res.stderr


def test_units_policy(tmp_path):
    files = _write(tmp_path)
    ast = files[ASTERISK_UNIT]
    # Asterisk: only what chroot --userspec needs, then its own unprivileged user
    assert "CapabilityBoundingSet=CAP_SYS_CHROOT CAP_SETUID CAP_SETGID\n" in ast
    assert "--userspec=990:990 " in ast and "/usr/sbin/asterisk -C /srv/hotline/main/etc/asterisk.conf -f" in ast
    assert " -g" not in ast.split("ExecStart=")[1].splitlines()[0]
    for name in (ASTERISK_UNIT, *DAEMON_UNITS.values()):
        text = files[name]
        for line in ("Restart=on-failure", "RestartSec=5", "StandardOutput=journal", "NoNewPrivileges=yes",
                     "ProtectSystem=strict", "ProtectHome=yes", "PrivateTmp=yes", f"PartOf={TARGET}",
                     f"WantedBy={TARGET}"):
            assert line in text.splitlines(), (name, line)
        assert "RestrictAddressFamilies=AF_INET AF_INET6 AF_UNIX" in text
    for daemon, name in DAEMON_UNITS.items():
        text = files[name]
        assert "User=hotline" in text and "CapabilityBoundingSet=\n" in text
        assert f"Wants=network-online.target {ASTERISK_UNIT}" in text
        assert "After=network-online.target postgresql.service redis-server.service" in text
        # the absolute command `hotline up` runs, from this venv
        exec_line = next(line for line in text.splitlines() if line.startswith("ExecStart="))
        assert exec_line.endswith(f" {daemon}") and exec_line.split("=", 1)[1].startswith(str(Path(sys.executable).parent))
        assert f"ReadWritePaths={tmp_path / 'state'}" in text
    assert all(u in files[TARGET] for u in (ASTERISK_UNIT, *DAEMON_UNITS.values()))


def test_disabled_daemons_get_no_unit(tmp_path):
    files = _write(tmp_path, {"transcription": {"enabled": False}, "interop": {"enabled": False}})
    assert set(files) == {TARGET, ASTERISK_UNIT, DAEMON_UNITS["serve"]}
    assert DAEMON_UNITS["interop"] not in files[TARGET]
