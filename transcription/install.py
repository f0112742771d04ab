"""Installing a Vosk model: fetch the archive (or take a local one), check its sha256, unpack it safely
into the models directory and make it the language's model.

Nothing is installed unless every step succeeds: the archive is checked before it is opened, unpacked
into a temporary directory beside the target and renamed into place, and the language is switched by
replacing languages.json in one rename. A refused archive leaves the models directory as it was."""
from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import stat
import tempfile
import urllib.request
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable
from urllib.parse import urlsplit

from core.archives import member_problem
from transcription.models import MANIFEST, installed, is_model_dir

CHUNK = 1 << 20
Progress = Callable[[int, int | None], None]      # bytes so far, total (None: unknown)
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")


class InstallError(Exception):
    """Why nothing was installed; str() is for the operator."""


@dataclass(frozen=True)
class Installed:
    lang: str
    name: str
    path: Path
    sha256: str | None      # None: already unpacked before, not checked again
    pinned: bool            # the sha256 was checked against a known value
    replaced: str | None    # the language's previous model, still on disk


def download(url: str, dest: Path, progress: Progress | None = None, timeout: float = 60) -> None:
    """``url`` into ``dest`` (http, https or file), streamed."""
    if urlsplit(url).scheme not in ("http", "https", "file"):
        raise InstallError(f"{url}: only http, https and file URLs")
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp, open(dest, "wb") as out:
            total = int(resp.headers.get("Content-Length") or 0) or None
            done = 0
            while chunk := resp.read(CHUNK):
                out.write(chunk)
                done += len(chunk)
                if progress:
                    progress(done, total)
    except OSError as e:          # URLError, HTTPError, timeouts, a full disk
        raise InstallError(f"download of {url} failed: {e}") from None


def sha256_of(path: Path, progress: Progress | None = None) -> str:
    h, done, total = hashlib.sha256(), 0, path.stat().st_size
    with open(path, "rb") as f:
        while chunk := f.read(CHUNK):
            h.update(chunk)
            done += len(chunk)
            if progress:
                progress(done, total)
    return h.hexdigest()


def check_archive(path: Path, sha256: str | None, size: int | None = None, progress: Progress | None = None) -> str:
    """The archive's sha256; refused if it differs from ``sha256`` or its size from ``size``."""
    if size is not None and path.stat().st_size != size:
        raise InstallError(f"{path.name}: {path.stat().st_size} bytes, expected {size}: refused, nothing installed")
    digest = sha256_of(path, progress)
    if sha256 and digest != sha256.lower():
        raise InstallError(f"{path.name}: sha256 {digest} does not match the expected {sha256.lower()}: "
                           "refused, nothing installed")
    return digest


def _members(zf: zipfile.ZipFile) -> list[zipfile.ZipInfo]:
    """Every member, or the archive is refused as a whole (no partial unpacking)."""
    out = []
    for info in zf.infolist():
        is_link = stat.S_ISLNK(info.external_attr >> 16)
        problem = member_problem(info.filename, is_link)
        if problem:
            raise InstallError(f"unsafe archive member {problem}: refused, nothing installed")
        out.append(info)
    return out


def _unpack(archive: Path, into: Path, progress: Progress | None = None) -> None:
    try:
        with zipfile.ZipFile(archive) as zf:
            members = _members(zf)
            total, done = sum(i.file_size for i in members), 0
            free = shutil.disk_usage(into.parent).free
            if total > free:      # fail now, not with a half-unpacked model and a full disk
                raise InstallError(f"{archive.name} unpacks to {total >> 20} MB, {free >> 20} MB free in {into.parent}: "
                                   "nothing installed")
            for info in members:
                target = into / info.filename
                if info.is_dir():
                    target.mkdir(parents=True, exist_ok=True)
                    continue
                target.parent.mkdir(parents=True, exist_ok=True)
                with zf.open(info) as src, open(target, "wb") as dst:
                    shutil.copyfileobj(src, dst, CHUNK)
                done += info.file_size
                if progress:
                    progress(done, total)
    except zipfile.BadZipFile as e:
        raise InstallError(f"{archive.name}: not a zip archive ({e}): refused, nothing installed") from None


def _model_root(unpacked: Path) -> Path:
    """The model inside an unpacked archive: its one top-level directory (the published layout) or the
    archive's top level itself."""
    if is_model_dir(unpacked):
        return unpacked
    subdirs = [p for p in unpacked.iterdir() if p.is_dir()]
    if len(subdirs) == 1 and is_model_dir(subdirs[0]):
        return subdirs[0]
    raise InstallError("the archive holds no Vosk model (am/final.mdl and conf/model.conf): nothing installed")


def model_name(url_or_path: str) -> str:
    """A directory name from the archive's file name: .../vosk-model-small-cn-0.22.zip -> vosk-model-small-cn-0.22."""
    base = Path(urlsplit(url_or_path).path).name
    for suffix in (".zip",):
        base = base.removesuffix(suffix)
    if not _NAME.match(base):
        raise InstallError(f"cannot name the model after {url_or_path!r}: give --name")
    return base


def write_manifest(directory: Path, mapping: dict[str, str]) -> None:
    """languages.json replaced in one rename: a reader sees the old or the new mapping, never half."""
    fd, tmp = tempfile.mkstemp(prefix=f".{MANIFEST}.", dir=directory)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        json.dump(mapping, f, ensure_ascii=False, indent=2, sort_keys=True)
        f.write("\n")
    os.chmod(tmp, 0o644)
    os.replace(tmp, directory / MANIFEST)


def _previous(directory: Path) -> dict[str, str]:
    try:
        return installed(directory, strict=True)
    except ValueError as e:
        raise InstallError(str(e)) from None


def activate(lang: str, directory: Path, name: str) -> str | None:
    """Make the model ``directory/name`` (already unpacked) ``lang``'s model; the one it replaces."""
    if not is_model_dir(directory / name):
        raise InstallError(f"{directory / name} is not a Vosk model: nothing changed")
    previous = _previous(directory)
    write_manifest(directory, {**previous, lang: name})
    old = previous.get(lang)
    return old if old != name else None


def install(lang: str, archive: Path, directory: Path, name: str, sha256: str | None = None,
            size: int | None = None, replace: bool = False,
            progress: Callable[[str], Progress] | None = None) -> Installed:
    """Unpack a checked ``archive`` as ``directory/name`` and make it ``lang``'s model.

    A model of that name already there is kept (an archive of the same name is the same model) unless
    ``replace``; either way the language is switched to it. ``progress(step)`` gives the callback of a
    step ("checking", "unpacking")."""
    if not _NAME.match(name):
        raise InstallError(f"{name!r} is not a model directory name")
    directory.mkdir(parents=True, exist_ok=True)
    _previous(directory)          # a damaged languages.json is refused before anything is unpacked
    digest = check_archive(archive, sha256, size, progress and progress("checking"))
    target = directory / name
    with tempfile.TemporaryDirectory(prefix=f".unpack-{name}.", dir=directory) as tmp:
        if replace or not is_model_dir(target):
            _unpack(archive, Path(tmp) / "x", progress and progress("unpacking"))
            root = _model_root(Path(tmp) / "x")
            if target.exists():
                target.rename(Path(tmp) / "old")      # removed with the temporary directory
            root.rename(target)
    return Installed(lang, name, target, digest, bool(sha256), activate(lang, directory, name))
