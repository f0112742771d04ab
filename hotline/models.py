"""`hotline models`: install a Vosk model for a language (from config/models.yaml, any URL, or a local
archive on a node without internet access) and list which model serves each language."""
from __future__ import annotations

import json
import re
import tempfile
from pathlib import Path

from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TransferSpeedColumn
from rich.table import Table

from core.config import load_model_catalogue
from hotline.common import _config, console, out
from transcription.install import InstallError, Installed, activate, download, install, model_name
from transcription.models import ModelRegistry, installed, is_model_dir, models_dir


def _bar() -> Progress:
    return Progress(TextColumn("{task.description}"), BarColumn(), DownloadColumn(), TransferSpeedColumn(),
                    console=console, transient=True)


def _steps(bar: Progress, name: str):
    """A progress callback per step of the install, each with its own bar."""
    def step(what: str):
        task = bar.add_task(f"{what} {name}", total=None)
        return lambda done, total: bar.update(task, completed=done, total=total)
    return step


class _Usage(Exception):
    """A request that cannot be served as given (exit 2)."""


def _source(args, catalogue) -> tuple[str, str, str | None, int | None]:
    """Where the archive comes from, the model's directory name, and the sha256 and size it must have."""
    if not re.fullmatch(r"[a-z]{2,3}", args.lang):
        raise _Usage(f"{args.lang!r} is not a language code (two or three lower-case letters: zh, en, bo)")
    if args.sha256 and not re.fullmatch(r"[0-9a-fA-F]{64}", args.sha256):
        raise _Usage(f"--sha256 {args.sha256!r}: expected 64 hexadecimal digits")
    if args.url or args.archive:
        source = args.url or str(Path(args.archive).resolve())
        try:
            name = args.name or model_name(source)
        except InstallError as e:
            raise _Usage(str(e)) from None
        # a catalogue model's pinned checksum also covers a copy from a mirror or a USB stick
        entry = catalogue.named(name)
    else:
        entry = catalogue.choose(args.lang, args.model)
        if entry is None:
            what = f"model {args.model!r} for {args.lang}" if args.model else f"model for {args.lang}"
            raise _Usage(f"no {what} in config/models.yaml: give --url URL --sha256 HEX, or --archive FILE")
        source, name = entry.url, args.name or entry.name
    if args.sha256:
        return source, name, args.sha256, None
    return source, name, entry.sha256 if entry else None, entry.size if entry else None


def _obtain(args, directory: Path, source: str, name: str, sha256: str | None, size: int | None) -> Installed:
    if args.url is None and args.archive is None and not args.replace and is_model_dir(directory / name):
        # checked when it was unpacked: running the command again must not fetch 1.3 GB again
        console.print(f"{name} is already in {directory}: not downloaded again (--replace to fetch it again)")
        return Installed(args.lang, name, directory / name, None, False, activate(args.lang, directory, name))
    # the download lands beside the models (same file system), never in the model's own place
    with tempfile.TemporaryDirectory(prefix=".download.", dir=directory) as tmp, _bar() as bar:
        step = _steps(bar, name)
        archive = Path(args.archive) if args.archive else Path(tmp) / "archive.zip"
        if not args.archive:
            download(source, archive, step("downloading"))
        return install(args.lang, archive, directory, name, sha256, size, replace=args.replace, progress=step)


def cmd_install(args) -> int:
    cfg = _config(args)
    directory = models_dir(cfg)
    try:
        source, name, sha256, size = _source(args, load_model_catalogue(cfg.config_dir))
    except _Usage as e:
        console.print(f"[red]{e}[/red]", highlight=False)
        return 2
    if args.lang not in {lang.code for lang in cfg.ivr.languages}:
        console.print(f"[yellow]{args.lang} is not an IVR language: no call is answered in it until the IVR "
                      f"offers it (ivr_flows/hotline.yaml)[/yellow]", highlight=False)
    try:
        directory.mkdir(parents=True, exist_ok=True)
        done = _obtain(args, directory, source, name, sha256, size)
    except (InstallError, OSError) as e:
        console.print(f"[red]{e}[/red]", highlight=False)
        return 1
    if done.sha256 and not done.pinned:
        console.print(f"[yellow]checksum not pinned: the archive's sha256 is {done.sha256}; compare it with the "
                      f"publisher's and give --sha256 next time (or pin it in config/models.yaml)[/yellow]",
                      highlight=False)
    console.print(f"{done.lang} is transcribed with {done.path} (recorded in {directory / 'languages.json'}); "
                  f"the next call uses it, no restart needed"
                  + (f"; the previous model {done.replaced} stays on disk" if done.replaced else ""), highlight=False)
    if args.json:
        print(json.dumps({"lang": done.lang, "name": done.name, "path": str(done.path), "sha256": done.sha256,
                          "pinned": done.pinned, "replaced": done.replaced}))
    return 0


def cmd_list(args) -> int:
    cfg = _config(args)
    catalogue = load_model_catalogue(cfg.config_dir)
    registry = ModelRegistry(cfg)
    inst = installed(registry.dir)
    rows = []
    for lang in sorted(set(registry.entries) | set(catalogue.models)):
        path = registry.locate(lang)
        default = catalogue.choose(lang)
        rows.append({"lang": lang, "model": str(path) if path else None,
                     "installed": inst.get(lang),
                     "candidates": registry.entries.get(lang, []),
                     "install": None if path or not default else f"hotline models install {lang}"})
    if args.json:
        print(json.dumps({"models_dir": str(registry.dir), "languages": rows}, ensure_ascii=False))
        return 0
    t = Table("language", "model in use", "how to get one", title=f"Vosk models ({registry.dir})")
    for r in rows:
        t.add_row(r["lang"], r["model"] or "[yellow]none: no_model[/yellow]", r["install"] or "")
    out.print(t)
    return 0


def register(sub) -> None:
    s = sub.add_parser("models", help="Vosk models per language: install (download or local archive), list")
    actions = s.add_subparsers(dest="action", required=True)
    p = actions.add_parser("install", help="download (or take --archive), check the sha256, unpack into the models "
                                           "directory and make it the language's model")
    p.add_argument("lang", help="language code, e.g. zh, en")
    src = p.add_mutually_exclusive_group()
    src.add_argument("--url", help="any model's zip (default: the language's model in config/models.yaml)")
    src.add_argument("--archive", help="a zip already on this machine (offline install)")
    src.add_argument("--model", help="another model of config/models.yaml for the language, by name")
    p.add_argument("--sha256", help="the archive's expected sha256 (default: the one pinned in config/models.yaml)")
    p.add_argument("--name", help="directory name of the model (default: the archive's name without .zip)")
    p.add_argument("--replace", action="store_true", help="unpack again over a model of the same name")
    p.add_argument("--json", action="store_true", help="print the result as JSON on stdout")
    p.set_defaults(func=cmd_install)
    p = actions.add_parser("list", help="which model serves each language")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_list)
