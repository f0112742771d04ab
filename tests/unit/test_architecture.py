"""The import rule of docs/architecture.md, enforced: import-linter's contracts (pyproject.toml) hold
for the tree as it is, and a wrong-way import makes them fail."""
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.config_tree import ROOT

PACKAGES = ("hotline", "simulators", "dashboard", "callcenter", "agents", "transcription", "interop",
            "backoffice", "ivr_flows", "store", "core")
LINT = Path(sys.executable).with_name("lint-imports")


def lint(root: Path) -> subprocess.CompletedProcess:
    if not LINT.exists():
        pytest.fail("lint-imports is missing: import-linter is in the test extras (make test installs it)")
    return subprocess.run([str(LINT), "--config", str(root / "pyproject.toml"), "--no-cache"], cwd=root,
                          env={"PYTHONPATH": str(root), "PATH": "/usr/bin:/bin"},
                          capture_output=True, text=True, timeout=180)


def copy_code(dest: Path) -> Path:
    for pkg in PACKAGES:
        shutil.copytree(ROOT / pkg, dest / pkg, ignore=shutil.ignore_patterns("__pycache__", "node_modules",
                                                                               "static", "recordings"))
    shutil.copy(ROOT / "pyproject.toml", dest / "pyproject.toml")
    return dest


def test_every_package_is_in_the_layers():
    """A new top-level package must get its place in the layers contract."""
    tops = {p.parent.name for p in ROOT.glob("*/__init__.py")} - {"tests"}
    assert tops == set(PACKAGES)


def test_the_contracts_hold():
    res = lint(ROOT)
    assert res.returncode == 0, res.stdout[-4000:] + res.stderr[-2000:]
    assert "BROKEN" not in res.stdout


@pytest.mark.parametrize("module, line, message", [
    # the pure core reaching up into the store
    ("core/kpi.py", "import store.engine\n", "core is not allowed to import store"),
    # a sibling talking to another sibling directly instead of through the composition root
    ("agents/service.py", "import transcription.keywords\n", "agents is not allowed to import transcription"),
    # a lower layer reaching the CLI
    ("callcenter/cdr.py", "import hotline.cli\n", "callcenter is not allowed to import hotline"),
    # the pure core doing I/O
    ("core/routing.py", "import sqlalchemy\n", "core is not allowed to import sqlalchemy"),
])
def test_a_wrong_way_import_breaks_them(tmp_path, module, line, message):
    tree = copy_code(tmp_path)
    path = tree / module
    text = path.read_text()
    head, sep, rest = text.partition("from __future__ import annotations\n")
    path.write_text(head + sep + line + rest if sep else line + text)
    res = lint(tree)
    assert res.returncode != 0
    assert message in res.stdout, res.stdout[-4000:]
