"""`hotline backup` / `restore` without Asterisk: the database part on SQLite and PostgreSQL, the files
(secrets, recordings, voicemail, astdb) in a stand-in instance directory, and the refusals."""
from __future__ import annotations

import asyncio
import io
import json
import sqlite3
import stat
import tarfile
from pathlib import Path

import pytest
from alembic import command
from alembic.config import Config as AlembicConfig

from core.calls import CallState
from core.config import load_config
from hotline import backup as bk
from hotline.cli import main
from store.backup import BackupError, schema_revision
from store.calls import CallStore
from store.engine import MIGRATIONS, Database, migrate, sync_url
from tests.helpers import ROOT


def _cfg(tmp: Path, db_url: str):
    return load_config(ROOT, {"state_dir": str(tmp / "state"), "database": {"url": db_url},
                              "asterisk": {"rootfs": str(tmp / "rootfs"), "instance": "bk"}})


def _migrate_to(url: str, revision: str) -> None:
    ac = AlembicConfig()
    ac.set_main_option("script_location", str(MIGRATIONS))
    ac.set_main_option("sqlalchemy.url", sync_url(url, ROOT))
    command.upgrade(ac, revision)


def _save_call(url: str, call_id: str) -> None:
    async def run():
        db = Database(url, ROOT)
        try:
            await CallStore(db).save_call(CallState(call_id=call_id, city="leshan", caller_number="13955550009",
                                                    status="ended", outcome="answered", started_at=1000.0,
                                                    recording="20261206/rec.wav"))
        finally:
            await db.close()
    asyncio.run(run())


def _call(url: str, call_id: str):
    async def run():
        db = Database(url, ROOT)
        try:
            return await CallStore(db).call(call_id)
        finally:
            await db.close()
    return asyncio.run(run())


def _install(cfg) -> dict[str, bytes]:
    """A stand-in install's files, as Asterisk and setup leave them; returns what each should hold."""
    src = bk.sources(cfg)
    files = {src["secrets/secrets.json"]: b'{"ami_secret": "s3cret"}',
             src["secrets/tls"] / "ca.pem": b"-----BEGIN CERTIFICATE-----\n",
             src["recordings"] / "20261206" / "rec.wav": b"RIFF" + bytes(range(256)) * 40,
             src["voicemail"] / "hotline" / "leshan" / "INBOX" / "msg0000.txt": b"[message]\norigmailbox=leshan\n",
             src["asterisk-custom"] / "pjsip_custom.conf": b"[lobby-phone]\ntype = endpoint\n",
             src["prompt-recordings"] / "bo" / "greeting.wav": b"RIFF" + bytes(range(200)) * 20}
    for path, data in files.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    src["astdb.sqlite3"].parent.mkdir(parents=True, exist_ok=True)
    with sqlite3.connect(src["astdb.sqlite3"]) as db:    # Asterisk's astdb table
        db.execute("CREATE TABLE astdb (key VARCHAR(256), value VARCHAR(256), PRIMARY KEY(key))")
        db.execute("INSERT INTO astdb VALUES ('/hlcb/1765000000.42/queue', 'leshan')")
    return {str(p): d for p, d in files.items()}


def _wipe(cfg, url: str) -> None:
    import shutil
    for path in bk.sources(cfg).values():
        if path.is_dir():
            shutil.rmtree(path)
        else:
            path.unlink(missing_ok=True)
    from store.backup import _drop_tables
    if url.startswith("sqlite"):
        Path(sync_url(url, ROOT).removeprefix("sqlite:///")).unlink()
    else:
        _drop_tables(sync_url(url, ROOT))


def test_backup_wipe_restore_on_both_databases(db_url, tmp_path):
    """A backup taken at an older schema revision (0013: the call record as the store writes it today) comes
    back with its data and is migrated to head."""
    cfg = _cfg(tmp_path, db_url)
    _migrate_to(db_url, "0013")
    _save_call(db_url, "1765000000.42")
    files = _install(cfg)
    archive = tmp_path / "out" / "b.tar.gz"

    manifest = bk.backup(cfg, archive)
    assert stat.S_IMODE(archive.stat().st_mode) == 0o600
    assert manifest["database"]["schema_revision"] == "0013"
    assert manifest["database"]["file"] == ("database.pgdump" if "postgresql" in db_url else "database.sqlite3")
    assert {"secrets/secrets.json", "secrets/tls/ca.pem", "recordings/20261206/rec.wav", "astdb.sqlite3",
            "voicemail/hotline/leshan/INBOX/msg0000.txt", "asterisk-custom/pjsip_custom.conf",
            "prompt-recordings/bo/greeting.wav"} <= set(manifest["members"])

    _wipe(cfg, db_url)
    bk.restore(cfg, archive, log=lambda *a: None)

    assert _call(db_url, "1765000000.42")["recording_path"] == "20261206/rec.wav"
    assert schema_revision(db_url, ROOT) == "0019"       # migrated after the restore
    for path, data in files.items():
        assert Path(path).read_bytes() == data, path
    assert stat.S_IMODE(bk.sources(cfg)["secrets/secrets.json"].stat().st_mode) == 0o600
    with sqlite3.connect(bk.sources(cfg)["astdb.sqlite3"]) as db:
        assert db.execute("SELECT value FROM astdb WHERE key = '/hlcb/1765000000.42/queue'").fetchone() == ("leshan",)


def _repack(archive: Path, dest: Path, change=lambda name, data: data, add: dict | None = None) -> Path:
    """A copy of ``archive`` with ``change(name, bytes) -> bytes`` applied to each member, plus ``add``."""
    with tarfile.open(archive) as tar:
        members = [(m, tar.extractfile(m).read()) for m in tar.getmembers() if m.isfile()]
    with tarfile.open(dest, "w:gz") as tar:
        for m, data in members:
            data = change(m.name, data)
            m.size = len(data)
            tar.addfile(m, io.BytesIO(data))
        for name, data in (add or {}).items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return dest


def test_a_corrupted_or_altered_archive_is_refused_and_nothing_changes(tmp_path, capsys):
    url = f"sqlite:///{tmp_path}/h.db"
    cfg = _cfg(tmp_path, url)
    migrate(url, ROOT)
    _save_call(url, "old.1")
    _install(cfg)
    archive = tmp_path / "b.tar.gz"
    bk.backup(cfg, archive)
    _save_call(url, "new.2")           # made after the backup: must survive every refused restore
    rec = bk.sources(cfg)["recordings"] / "20261206" / "rec.wav"
    rec.write_bytes(b"newer")

    altered = _repack(archive, tmp_path / "altered.tar.gz",
                      lambda name, data: data[:-1] + b"X" if name.endswith("rec.wav") else data)
    truncated = tmp_path / "truncated.tar.gz"
    truncated.write_bytes(archive.read_bytes()[: archive.stat().st_size // 2])
    extra = _repack(archive, tmp_path / "extra.tar.gz", add={"secrets/planted.json": b"{}"})
    garbage = tmp_path / "garbage.tar.gz"
    garbage.write_bytes(b"not a backup at all")

    for bad, why in ((altered, "does not match its manifest"), (truncated, "not a readable backup archive"),
                     (extra, "secrets/planted.json"), (garbage, "not a readable backup archive")):
        with pytest.raises(BackupError, match=why):
            bk.restore(cfg, bad, log=lambda *a: None)
        assert _call(url, "new.2") is not None and rec.read_bytes() == b"newer"
    # the command line says so and exits 2
    assert main(["--set", f"state_dir={tmp_path}/state", "--set", f"database.url={url}",
                 "--set", f"asterisk.rootfs={tmp_path}/rootfs", "--set", "asterisk.instance=bk",
                 "restore", str(altered)]) == 2
    assert "restore refused" in capsys.readouterr().err


def test_restore_is_refused_while_the_install_runs(tmp_path):
    import os
    url = f"sqlite:///{tmp_path}/h.db"
    cfg = _cfg(tmp_path, url)
    migrate(url, ROOT)
    archive = tmp_path / "b.tar.gz"
    bk.backup(cfg, archive)
    from hotline.ops import _controller_pidfile
    cfg.state_dir.mkdir(parents=True, exist_ok=True)
    _controller_pidfile(cfg).write_text(str(os.getpid()))     # a live process holds the controller's pid file
    with pytest.raises(BackupError, match="running: serve"):
        bk.restore(cfg, archive, log=lambda *a: None)
    bk.restore(cfg, archive, force=True, log=lambda *a: None)


def test_backup_command_prints_the_archive_path(tmp_path, capsys):
    url = f"sqlite:///{tmp_path}/h.db"
    migrate(url, ROOT)
    assert main(["--set", f"state_dir={tmp_path}/state", "--set", f"database.url={url}",
                 "--set", f"asterisk.rootfs={tmp_path}/rootfs", "--set", "asterisk.instance=bk", "backup"]) == 0
    out = Path(capsys.readouterr().out.strip())
    assert out.parent == tmp_path / "state" / "backups" and out.is_file()
    with tarfile.open(out) as tar:
        manifest = json.loads(tar.extractfile("manifest.json").read())
    assert manifest["database"]["schema_revision"] == "0019" and list(manifest["members"]) == ["database.sqlite3"]


def test_a_backup_restores_only_into_the_same_kind_of_database(tmp_path):
    url = f"sqlite:///{tmp_path}/h.db"
    migrate(url, ROOT)
    archive = tmp_path / "b.tar.gz"
    bk.backup(_cfg(tmp_path, url), archive)
    with pytest.raises(BackupError, match="holds a sqlite database but database.url is postgresql"):
        bk.restore(_cfg(tmp_path, "postgresql://nobody@127.0.0.1:1/none"), archive, log=lambda *a: None)


def test_callback_requests_are_read_from_astdb(tmp_path):
    """What the controller re-queues after Asterisk lost the placeholders (callcenter/astdb.py)."""
    from callcenter.astdb import callback_requests
    from core.paths import InstancePaths

    paths = InstancePaths(tmp_path / "rootfs", "bk")
    assert callback_requests(paths) == {}                 # no astdb yet: nothing pending
    db = paths.host(paths.lib / "astdb.sqlite3")
    db.parent.mkdir(parents=True)
    with sqlite3.connect(db) as conn:
        conn.execute("CREATE TABLE astdb (key VARCHAR(256), value VARCHAR(256), PRIMARY KEY(key))")
        conn.executemany("INSERT INTO astdb VALUES (?, ?)", [
            ("/hlcb/1765000000.42/queue", "leshan"), ("/hlcb/1765000000.42/number", "13955550072"),
            ("/hlcb/t17/queue", "sichuan"), ("/Queue/PersistentMembers/leshan", "PJSIP/agent1001;0")])
    assert callback_requests(paths) == {"1765000000.42": {"queue": "leshan", "number": "13955550072"},
                                        "t17": {"queue": "sichuan"}}
