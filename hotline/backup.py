"""`hotline backup` and `hotline restore`: one archive (tar.gz, 0600) with a manifest, holding a
consistent database snapshot, the secrets, recordings, voicemail and Asterisk's astdb (pending "press 5"
callbacks, queue members)."""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import tarfile
import tempfile
import time
import zlib
from datetime import datetime, timezone
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

from core.config import HotlineConfig
from core.paths import InstancePaths
from store.backup import BackupError, copy_sqlite, dump_database, install_sqlite, restore_database, schema_revision

from hotline.common import _config, console

FORMAT = "hotline-backup"
FORMAT_VERSION = 1
MANIFEST = "manifest.json"

ASTDB_COMMIT_SECONDS = 2.5   # Asterisk commits batched astdb writes once a second


def _paths(cfg: HotlineConfig) -> InstancePaths:
    a = cfg.system.asterisk
    return InstancePaths(cfg.resolve(a.rootfs), a.instance)


def sources(cfg: HotlineConfig) -> dict[str, Path]:
    """What a backup holds besides the database: archive name -> where it lives on this host."""
    p = _paths(cfg)
    return {"secrets/secrets.json": cfg.state_dir / "secrets.json",
            "secrets/tls": cfg.state_dir / "tls",
            "recordings": p.host(p.monitor),
            "voicemail": p.host(p.spool / "voicemail"),
            # the admin's Asterisk files (custom endpoints, hooks): setup never rewrites them, so only here
            "asterisk-custom": p.host(p.etc / "custom"),
            "astdb.sqlite3": p.host(p.lib / "astdb.sqlite3"),
            # prompts supervisors recorded or uploaded (setup installs them into the sounds again)
            "prompt-recordings": cfg.state_dir / "prompt-recordings"}


def _staging_dir(cfg: HotlineConfig) -> Path:
    """Where an archive is assembled or unpacked: in the state directory (0700, secrets inside), on the
    disk that holds the data rather than a small /tmp."""
    cfg.state_dir.mkdir(parents=True, exist_ok=True)
    cfg.state_dir.chmod(0o700)
    return cfg.state_dir


def _sha256(path: Path) -> str:
    with open(path, "rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


def _files(top: Path) -> dict[str, Path]:
    """Every regular file under ``top``, by its path relative to ``top``."""
    return {str(f.relative_to(top)): f for f in sorted(top.rglob("*")) if f.is_file() and not f.is_symlink()}


def _hotline_version() -> str:
    try:
        return version("hotline12348")
    except PackageNotFoundError:
        return "unknown"


def backup(cfg: HotlineConfig, out: Path) -> dict:
    """Write the archive to ``out`` (0600) and return its manifest."""
    url = cfg.system.database.url
    with tempfile.TemporaryDirectory(prefix="backup-", dir=_staging_dir(cfg)) as tmp:
        stage = Path(tmp)
        db_file = dump_database(url, cfg.root, stage)
        # the revision of the snapshot itself (SQLite), or of the database just dumped (PostgreSQL)
        revision = schema_revision(f"sqlite:///{db_file}" if db_file.suffix == ".sqlite3" else url, cfg.root)
        for name, src in sources(cfg).items():
            dest = stage / name
            dest.parent.mkdir(parents=True, exist_ok=True)
            if name == "astdb.sqlite3":
                if src.is_file():      # Asterisk may be writing it: a consistent copy
                    if "asterisk" in running(cfg):
                        # Asterisk batches astdb writes and commits them about a second later: wait,
                        # so a callback request made just now is whole in the copy, not half
                        time.sleep(ASTDB_COMMIT_SECONDS)
                    copy_sqlite(src, dest)
            elif src.is_dir():
                shutil.copytree(src, dest, symlinks=True)
            elif src.is_file():
                shutil.copy2(src, dest)
        members = {name: _sha256(f) for name, f in _files(stage).items()}
        manifest = {"format": FORMAT, "format_version": FORMAT_VERSION, "hotline_version": _hotline_version(),
                    "created_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
                    "instance": cfg.system.asterisk.instance,
                    "database": {"kind": "postgresql" if db_file.suffix == ".pgdump" else "sqlite",
                                 "file": db_file.name, "schema_revision": revision},
                    "members": members}
        (stage / MANIFEST).write_text(json.dumps(manifest, indent=2, ensure_ascii=False))
        out.parent.mkdir(parents=True, exist_ok=True)
        partial = out.with_name(out.name + ".partial")
        # secrets and recordings: only the operator may read it, from the first byte
        fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as raw, tarfile.open(fileobj=raw, mode="w:gz") as tar:
            tar.add(stage / MANIFEST, MANIFEST)
            for name in members:
                tar.add(stage / name, name)
        os.chmod(partial, 0o600)
        partial.replace(out)
    return manifest


def unpack(archive: Path, dest: Path) -> dict:
    """Extract ``archive`` into ``dest`` and check it against its manifest; BackupError if anything is
    unreadable, missing, extra or altered (nothing outside ``dest`` is touched)."""
    try:
        with tarfile.open(archive, "r:gz") as tar:
            # "data": no absolute paths, links out of dest or device files from a crafted archive
            tar.extractall(dest, filter="data")
    except FileNotFoundError:
        raise BackupError(f"{archive}: no such file")
    except (tarfile.TarError, EOFError, zlib.error, OSError) as e:
        raise BackupError(f"{archive} is not a readable backup archive ({e}); nothing was restored")
    try:
        manifest = json.loads((dest / MANIFEST).read_text())
        members = manifest["members"]
        if manifest.get("format") != FORMAT:
            raise ValueError("not a hotline backup")
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise BackupError(f"{archive} has no valid {MANIFEST} ({e}); nothing was restored")
    if manifest.get("format_version", 0) > FORMAT_VERSION:
        raise BackupError(f"{archive} was written by a newer hotline (backup format "
                          f"{manifest['format_version']}); upgrade first; nothing was restored")
    found = {name: f for name, f in _files(dest).items() if name != MANIFEST}
    bad = sorted(set(members) ^ set(found)) + sorted(n for n in set(members) & set(found)
                                                     if _sha256(found[n]) != members[n])
    if bad:
        raise BackupError(f"{archive} does not match its manifest (missing, extra or altered: "
                          f"{', '.join(bad[:10])}{' …' if len(bad) > 10 else ''}); nothing was restored")
    if manifest["database"]["file"] not in members:
        raise BackupError(f"{archive} holds no database snapshot; nothing was restored")
    return manifest


def running(cfg: HotlineConfig) -> list[str]:
    """The parts of this install that are running (pid files of live processes)."""
    from callcenter.asterisk.runtime import AsteriskInstance
    from hotline.ops import DAEMONS, _pid_alive, _pidfile

    live = ["asterisk"] if AsteriskInstance(cfg).running() else []
    return live + [d for d in DAEMONS if _pid_alive(_pidfile(cfg, d))]


def _chown_like(path: Path, like: Path) -> None:
    """Restored Asterisk files belong to whoever owns Asterisk's directory (root or its own user)."""
    st = like.stat()
    for f in [path, *path.rglob("*")] if path.is_dir() else [path]:
        os.chown(f, st.st_uid, st.st_gid, follow_symlinks=False)


def _replace(src: Path | None, dest: Path) -> None:
    """``dest`` becomes a copy of ``src`` (or goes, if the backup had none)."""
    if dest.is_dir() and not dest.is_symlink():
        shutil.rmtree(dest)
    else:
        dest.unlink(missing_ok=True)
    if src is None or not src.exists():
        return
    dest.parent.mkdir(parents=True, exist_ok=True)
    if src.is_dir():
        shutil.copytree(src, dest, symlinks=True)
    else:
        shutil.copy2(src, dest)


def restore(cfg: HotlineConfig, archive: Path, force: bool = False, log=console.print) -> dict:
    """Check the archive, then put its database, secrets, recordings, voicemail and astdb in place and
    migrate the database to this version's schema. Refused while the install runs, unless ``force``."""
    from store.engine import migrate

    live = running(cfg)
    if live and not force:
        raise BackupError(f"running: {', '.join(live)}; stop the install first (`hotline down` or "
                          f"systemctl stop), or pass --force")
    with tempfile.TemporaryDirectory(prefix="restore-", dir=_staging_dir(cfg)) as tmp:
        stage = Path(tmp)
        manifest = unpack(archive, stage)
        restore_database(cfg.system.database.url, cfg.root, stage / manifest["database"]["file"])
        log(f"database restored ({manifest['database']['kind']}, schema {manifest['database']['schema_revision']})")
        p = _paths(cfg)
        for name, dest in sources(cfg).items():
            src = stage / name
            if name == "astdb.sqlite3":
                for suffix in ("-wal", "-shm", "-journal"):
                    Path(f"{dest}{suffix}").unlink(missing_ok=True)
                if src.is_file():
                    install_sqlite(src, dest)
                else:
                    dest.unlink(missing_ok=True)
            else:
                _replace(src, dest)
            if name.startswith("secrets/") and dest.is_file():
                dest.chmod(0o600)
            if not name.startswith(("secrets/", "prompt-recordings")) and dest.exists() and p.host(p.inner).exists():
                _chown_like(dest, p.host(p.inner))
        log(f"secrets, recordings, voicemail and astdb restored from {archive}")
    migrate(cfg.system.database.url, cfg.root)
    log("database migrated to this version's schema")
    return manifest


# ------------------------------------------------------------------ CLI
def cmd_backup(args) -> int:
    cfg = _config(args)
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    out = Path(args.out) if args.out else cfg.state_dir / "backups" / f"hotline-{cfg.system.asterisk.instance}-{stamp}.tar.gz"
    try:
        manifest = backup(cfg, out)
    except BackupError as e:
        console.print(f"[red]backup failed: {e}[/red]", highlight=False)
        return 1
    console.print(f"backup: {len(manifest['members'])} files, database {manifest['database']['kind']} at schema "
                  f"{manifest['database']['schema_revision']}", highlight=False)
    print(out)
    return 0


def cmd_restore(args) -> int:
    cfg = _config(args)
    try:
        restore(cfg, Path(args.archive), force=args.force)
    except BackupError as e:
        console.print(f"[red]restore refused: {e}[/red]", highlight=False)
        return 2
    console.print("[green]restore complete[/green]: start the install again (`hotline up` or systemctl start)")
    return 0


def register(sub) -> None:
    s = sub.add_parser("backup", help="archive the database, secrets, recordings, voicemail and astdb (0600 tar.gz)")
    s.add_argument("--out", help="archive path (default: <state_dir>/backups/hotline-<instance>-<UTC time>.tar.gz)")
    s.set_defaults(func=cmd_backup)
    s = sub.add_parser("restore", help="restore a backup archive (the install must be stopped), then migrate")
    s.add_argument("archive")
    s.add_argument("--force", action="store_true", help="restore even though parts of the install seem to run")
    s.set_defaults(func=cmd_restore)
