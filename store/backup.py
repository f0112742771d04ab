"""Consistent copies of the install's databases for `hotline backup` / `restore`: the hotline database
(SQLite through SQLite's online backup API, PostgreSQL through pg_dump's custom format) and any other
SQLite file a live process writes (Asterisk's astdb)."""
from __future__ import annotations

import shutil
import sqlite3
import subprocess
from pathlib import Path

from sqlalchemy import MetaData, create_engine, text

from store.engine import sync_url


class BackupError(RuntimeError):
    """A backup or restore step failed; the message says which and why."""


def copy_sqlite(src: Path, dest: Path) -> None:
    """A consistent copy of a SQLite file another process may be writing (the online backup API reads
    a committed state, WAL included); ``dest`` is replaced."""
    dest.unlink(missing_ok=True)
    # read-only URI: a backup must never create or change the source
    source = sqlite3.connect(f"file:{src}?mode=ro", uri=True, timeout=30)
    try:
        target = sqlite3.connect(dest)
        try:
            source.backup(target)
        finally:
            target.close()
    finally:
        source.close()


def install_sqlite(snapshot: Path, dest: Path) -> None:
    """Put a snapshot in place of a (stopped) SQLite database. Its old -wal/-shm files go first: SQLite
    would replay a stale WAL onto the restored file."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    for suffix in ("-wal", "-shm", "-journal"):
        Path(f"{dest}{suffix}").unlink(missing_ok=True)
    tmp = dest.with_name(dest.name + ".restoring")
    shutil.copyfile(snapshot, tmp)
    tmp.replace(dest)


def _libpq_url(url: str, root: Path) -> str:
    """pg_dump and pg_restore speak libpq: postgresql://… without SQLAlchemy's driver suffix."""
    return "postgresql://" + sync_url(url, root).split("://", 1)[1]


def _pg_tool(name: str) -> str:
    exe = shutil.which(name)
    if exe is None:
        raise BackupError(f"{name} is not installed (apt-get install postgresql-client-15)")
    return exe


def schema_revision(url: str, root: Path) -> str | None:
    """The Alembic revision the database is at (None before the first migration)."""
    engine = create_engine(sync_url(url, root))
    try:
        with engine.connect() as conn:
            return conn.execute(text("SELECT version_num FROM alembic_version")).scalar()
    except Exception:    # no alembic_version table yet: a database never migrated
        return None
    finally:
        engine.dispose()


def _drop_tables(sync: str) -> None:
    engine = create_engine(sync)
    try:
        meta = MetaData()
        meta.reflect(engine)
        meta.drop_all(engine)
    finally:
        engine.dispose()


def dump_database(url: str, root: Path, dest_dir: Path) -> Path:
    """A consistent snapshot of the hotline database into ``dest_dir``: ``database.sqlite3`` or
    ``database.pgdump`` (pg_dump custom format, one transaction)."""
    s = sync_url(url, root)
    if s.startswith("sqlite:///"):
        src = Path(s.removeprefix("sqlite:///"))
        if not src.is_file():
            raise BackupError(f"the database {src} does not exist (run `hotline setup` first)")
        dest = dest_dir / "database.sqlite3"
        copy_sqlite(src, dest)
        return dest
    if s.startswith("postgresql"):
        dest = dest_dir / "database.pgdump"
        res = subprocess.run([_pg_tool("pg_dump"), "--format=custom", "--no-owner", "--no-privileges",
                              "--file", str(dest), "--dbname", _libpq_url(url, root)],
                             capture_output=True, text=True, timeout=3600)
        if res.returncode != 0:
            raise BackupError(f"pg_dump failed: {res.stderr.strip()[-2000:]}")
        return dest
    raise BackupError(f"cannot back up a database of this kind: {url.split(':', 1)[0]}")


def restore_database(url: str, root: Path, snapshot: Path) -> None:
    """Replace the configured database's contents with ``snapshot`` (from ``dump_database``)."""
    s = sync_url(url, root)
    kind = "postgresql" if s.startswith("postgresql") else "sqlite" if s.startswith("sqlite:///") else "other"
    wanted = {"database.sqlite3": "sqlite", "database.pgdump": "postgresql"}.get(snapshot.name)
    if kind != wanted:
        raise BackupError(f"the backup holds a {wanted} database but database.url is {kind}: restore into "
                          f"the same kind (or move the data with the database's own tools)")
    if kind == "sqlite":
        install_sqlite(snapshot, Path(s.removeprefix("sqlite:///")))
        return
    # the database becomes exactly the snapshot: a table a newer schema added would make the migrations
    # that follow (from the snapshot's older revision) fail on "already exists"
    _drop_tables(s)
    res = subprocess.run([_pg_tool("pg_restore"), "--clean", "--if-exists", "--no-owner", "--no-privileges",
                          "--single-transaction", "--exit-on-error", "--dbname", _libpq_url(url, root), str(snapshot)],
                         capture_output=True, text=True, timeout=3600)
    if res.returncode != 0:
        raise BackupError(f"pg_restore failed: {res.stderr.strip()[-2000:]}")
