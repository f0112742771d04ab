"""`hotline install-services`: the systemd units pass `systemd-analyze verify` (offline: no systemd as
PID 1 here, so no generators and no man pages), and each carries the sandbox and restart policy."""
import json
import os
import shutil
import subprocess
import sys
import threading
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


def test_asterisk_unit_has_its_cores(tmp_path):
    """asterisk.cpus goes into Asterisk's unit as CPUAffinity=; the daemons move off those cores
    themselves when they start (hotline/daemons.py), so their units carry none."""
    files = _write(tmp_path, {"asterisk": {"cpus": [0, 1]}})
    assert "\nCPUAffinity=0 1\n" in files[ASTERISK_UNIT]
    assert not any("CPUAffinity" in files[u] for u in DAEMON_UNITS.values())
    (tmp_path / "plain").mkdir()
    assert "CPUAffinity" not in _write(tmp_path / "plain")[ASTERISK_UNIT]
    if Path(ANALYZE).exists():
        res = subprocess.run([ANALYZE, "verify", "--man=no", "--generators=no", *(str(tmp_path / n) for n in files)],
                             capture_output=True, text=True, timeout=60)
        assert res.returncode == 0 and "CPUAffinity" not in res.stderr, res.stderr


def test_daemon_moves_off_asterisks_cores():
    """The daemons' first step: the calling thread (and all it starts later) leaves Asterisk's cores. Run
    in a thread of its own, since affinity is per thread and the test's own must stay as it is."""
    from hotline.daemons import keep_off_asterisk_cores

    cores = os.sched_getaffinity(0)
    if len(cores) < 2:
        pytest.skip("one core: nothing to keep off")
    first = min(cores)
    seen = {}

    def daemon(overrides):
        keep_off_asterisk_cores(load_config(ROOT, overrides))
        seen[str(overrides)] = os.sched_getaffinity(0)

    for overrides in ({"asterisk": {"cpus": [first]}}, {"asterisk": {"cpus": sorted(cores)}}, {}):
        t = threading.Thread(target=daemon, args=(overrides,))
        t.start()
        t.join()
    assert seen[str({"asterisk": {"cpus": [first]}})] == cores - {first}
    # a list that takes every core is logged and the daemon keeps them all; so does no list at all
    assert seen[str({"asterisk": {"cpus": sorted(cores)}})] == cores
    assert seen[str({})] == cores


def test_install_refuses_cores_the_machine_lacks(tmp_path):
    env = {**os.environ, "HOTLINE_CONFIG_OVERRIDES": json.dumps({"state_dir": str(tmp_path / "state"),
                                                                 "asterisk": {"cpus": [4095]}})}
    res = subprocess.run([sys.executable, "-m", "hotline.cli", "install-services", "--dest", str(tmp_path / "units")],
                         capture_output=True, text=True, timeout=120, env=env, cwd=ROOT)
    assert res.returncode == 2, res.stdout + res.stderr
    assert "asterisk.cpus: core 4095 is not among this machine's cores" in res.stdout + res.stderr
    assert not (tmp_path / "units").exists() or not list((tmp_path / "units").iterdir())
