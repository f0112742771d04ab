"""A copy of the shipped config/ and ivr_flows/ trees that a test may break one value in."""
from __future__ import annotations

import shutil
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent


def copy_tree(dest: Path) -> Path:
    for d in ("config", "ivr_flows"):
        shutil.copytree(ROOT / d, dest / d, ignore=shutil.ignore_patterns("*.py", "__pycache__", "recordings"))
    return dest


def edit(path: Path, fn) -> None:
    """Load a YAML file, let ``fn`` change the data, write it back."""
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    fn(data)
    path.write_text(yaml.safe_dump(data, allow_unicode=True, sort_keys=False), encoding="utf-8")
