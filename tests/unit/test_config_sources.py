"""Config for production (issue 17, item 6): the config directory (--config-dir, HOTLINE_CONFIG_DIR,
/etc/hotline, the checkout's config/), HOTLINE_<SECTION>__<KEY> variables and secret files over
hotline.yaml, in the precedence docs/operations.md documents; errors name the variable or secret
file, and a secret's value is never shown."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import core.config.sources as sources
from core.config import ConfigError, load_config
from hotline.config_check import check
from tests.config_tree import ROOT, edit

PASSWORD = "Pw-never-shown-7f3a"


def _clean_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items()
            if not k.upper().startswith("HOTLINE_") and k != sources.CREDENTIALS_ENV}


@pytest.fixture(autouse=True)
def no_ambient_config(monkeypatch, tmp_path):
    """Nothing from the host: no HOTLINE_* variables, no credentials, no /etc/hotline."""
    for k in set(os.environ) - set(_clean_env()):
        monkeypatch.delenv(k)
    monkeypatch.setattr(sources, "ETC_DIR", tmp_path / "no-etc")


def etc_dir(tmp_path: Path, name: str = "etc-hotline") -> Path:
    """A production-like config directory outside the checkout, its data paths absolute."""
    d = shutil.copytree(ROOT / "config", tmp_path / name, ignore=shutil.ignore_patterns("*.py", "__pycache__"))
    state = tmp_path / "state"

    def absolute(data):
        data["state_dir"] = str(state)
        data["database"]["url"] = f"sqlite:///{state}/hotline.db"
    edit(d / "hotline.yaml", absolute)
    return d


def secrets_dir(tmp_path: Path, **files: str) -> Path:
    d = tmp_path / "credentials"
    d.mkdir(exist_ok=True)
    for name, text in files.items():
        (d / name).write_text(text + "\n", encoding="utf-8")   # echo's newline is stripped
    return d


# ------------------------------------------------------------------ precedence
def test_each_level_overrides_the_one_below(tmp_path, monkeypatch):
    """defaults < hotline.yaml < secret files < environment < overrides (--set, HOTLINE_CONFIG_OVERRIDES)."""
    etc = etc_dir(tmp_path)
    monkeypatch.setenv("HOTLINE_CONFIG_DIR", str(etc))
    edit(etc / "hotline.yaml", lambda d: d["queues"].pop("max_callers"))
    cfg = load_config()
    assert cfg.system.queues.max_callers == 50 and "queues.max_callers" not in cfg.sources      # model default

    edit(etc / "hotline.yaml", lambda d: d["queues"].__setitem__("max_callers", 40))
    assert load_config().system.queues.max_callers == 40                                          # the file

    creds = secrets_dir(tmp_path, HOTLINE_QUEUES__MAX_CALLERS="30")
    monkeypatch.setenv("CREDENTIALS_DIRECTORY", str(creds))
    cfg = load_config()
    assert cfg.system.queues.max_callers == 30                                                    # secret file
    assert cfg.sources["queues.max_callers"] == f"secret file {creds / 'HOTLINE_QUEUES__MAX_CALLERS'}"

    monkeypatch.setenv("HOTLINE_QUEUES__MAX_CALLERS", "20")
    cfg = load_config()
    assert cfg.system.queues.max_callers == 20                                                    # environment
    assert cfg.sources["queues.max_callers"] == "environment HOTLINE_QUEUES__MAX_CALLERS"

    cfg = load_config(overrides={"queues": {"max_callers": 10}})
    assert cfg.system.queues.max_callers == 10                                                    # override
    assert cfg.sources["queues.max_callers"] == sources.OVERRIDE
    # the neighbours of an overridden key keep the file's values
    assert cfg.system.queues.ring_seconds == 15 and cfg.system.queues.strategy == "rrmemory"


def test_environment_is_typed_nested_and_case_insensitive(tmp_path, monkeypatch):
    monkeypatch.setenv("hotline_asterisk__sip_port", "5070")
    monkeypatch.setenv("HOTLINE_TRUNK__MATCH", '["10.1.0.0/16", "10.2.0.1"]')
    monkeypatch.setenv("HOTLINE_TRANSCRIPTION__LIVE__ENABLED", "false")
    monkeypatch.setenv("HOTLINE_REDIS__URL", "null")                       # YAML's null: no Redis
    cfg = load_config(ROOT)
    s = cfg.system
    assert (s.asterisk.sip_port, s.trunk.match, s.transcription.live.enabled, s.redis.url) == \
        (5070, ["10.1.0.0/16", "10.2.0.1"], False, None)
    assert cfg.sources["asterisk.sip_port"] == "environment hotline_asterisk__sip_port"
    # other HOTLINE_ variables are not settings: left alone
    monkeypatch.setenv("HOTLINE_REDIS_ADMIN_URL", "redis://admin:x@127.0.0.1:6379/0")
    assert load_config(ROOT).system.redis.url is None


# ------------------------------------------------------------------ errors name the variable
@pytest.mark.parametrize("var, value, expected", [
    ("HOTLINE_ASTERISK__SIP_PORT", "99999", "environment HOTLINE_ASTERISK__SIP_PORT: asterisk.sip_port: "
                                            "Input should be less than or equal to 65535 (got '99999')"),
    ("HOTLINE_DATABASE__URL", "mysql://db/hotline", "environment HOTLINE_DATABASE__URL: database.url: Value error, "
                                                    "database url must be sqlite:/// or postgresql"),
    ("HOTLINE_DATABASE__URLL", "sqlite:///x.db", "environment HOTLINE_DATABASE__URLL: database.urll: Extra inputs"),
    ("HOTLINE_DATABSE__URL", "sqlite:///x.db", "environment HOTLINE_DATABSE__URL: hotline.yaml has no section 'databse'"),
    ("HOTLINE_TRUNK__MATCH", "10.0.0.0/8", "environment HOTLINE_TRUNK__MATCH: trunk.match: a list or mapping is "
                                           "written as JSON"),
])
def test_an_invalid_variable_is_named(monkeypatch, var, value, expected):
    monkeypatch.setenv(var, value)
    with pytest.raises(ConfigError) as e:
        load_config(ROOT)
    assert str(e.value).startswith(expected), str(e.value)
    report = check(ROOT)
    assert not report.ok and report.problems[0].file == expected.split(":")[0], report.problems


# ------------------------------------------------------------------ secret files
@pytest.mark.parametrize("var", ["CREDENTIALS_DIRECTORY", "HOTLINE_SECRETS_DIR"])
def test_a_secret_file_is_used_and_never_shown(tmp_path, monkeypatch, var):
    url = f"postgresql+psycopg://hotline:{PASSWORD}@db.example/hotline"
    creds = secrets_dir(tmp_path, HOTLINE_DATABASE__URL=url)
    (creds / "carrier-tls.key").write_bytes(b"\x80\xff not text")      # other credentials are not ours
    monkeypatch.setenv(var, str(creds))
    cfg = load_config(ROOT)
    assert cfg.system.database.url == url
    report = check(ROOT)
    assert report.ok, report.problems
    assert report.summary["sources"] == {"database.url": f"secret file {creds / 'HOTLINE_DATABASE__URL'}"}
    assert PASSWORD not in json.dumps(report.as_dict())
    # wrong, and still not shown: neither by the model's message nor by the value it quotes
    (creds / "HOTLINE_DATABASE__URL").write_text(f"mysql://hotline:{PASSWORD}@db.example/hotline")
    with pytest.raises(ConfigError) as e:
        load_config(ROOT)
    assert str(e.value).startswith(f"secret file {creds / 'HOTLINE_DATABASE__URL'}: database.url: ")
    assert PASSWORD not in str(e.value) and "***" in str(e.value)


def test_a_missing_secrets_directory_is_named(tmp_path, monkeypatch):
    monkeypatch.setenv("HOTLINE_SECRETS_DIR", str(tmp_path / "nowhere"))
    with pytest.raises(ConfigError, match=r"^environment HOTLINE_SECRETS_DIR: .*nowhere is not a directory"):
        load_config(ROOT)


# ------------------------------------------------------------------ the config directory
def test_the_config_directory_is_chosen_in_the_documented_order(tmp_path, monkeypatch):
    etc, other = etc_dir(tmp_path), etc_dir(tmp_path, "other")
    edit(other / "hotline.yaml", lambda d: d["node"].__setitem__("name", "other-node"))
    assert load_config().config_dir == ROOT / "config"                       # nothing said: the checkout
    monkeypatch.setattr(sources, "ETC_DIR", etc)
    assert load_config().config_dir == etc                                   # /etc/hotline holds hotline.yaml
    monkeypatch.setenv("HOTLINE_CONFIG_DIR", str(other))
    cfg = load_config()
    assert cfg.config_dir == other and cfg.system.node.name == "other-node"   # the variable
    assert load_config(config_dir=etc).config_dir == etc                     # --config-dir
    assert load_config(ROOT).config_dir == ROOT / "config"                   # an explicit --root's config/


def test_files_named_in_hotline_yaml_are_found_next_to_it(tmp_path, monkeypatch):
    etc = etc_dir(tmp_path)
    edit(etc / "agents.yaml", lambda d: d["agents"].append({**d["agents"][0], "id": "agent1099"}))
    monkeypatch.setenv("HOTLINE_CONFIG_DIR", str(etc))
    assert load_config().agent("agent1099")
    assert "agent1099" not in {a.id for a in load_config(ROOT).agents}
    (etc / "keywords.yaml").write_text("topics: {}\n", encoding="utf-8")
    assert load_config().keywords.topics == {}


def test_relative_data_paths_outside_the_checkout_are_refused(tmp_path, monkeypatch):
    etc = shutil.copytree(ROOT / "config", tmp_path / "etc", ignore=shutil.ignore_patterns("*.py"))
    monkeypatch.setenv("HOTLINE_CONFIG_DIR", str(etc))
    with pytest.raises(ConfigError) as e:
        load_config()
    state, db = str(e.value).splitlines()
    assert state.startswith(f"{etc / 'hotline.yaml'}: state_dir: '.hotline' is a relative path") \
        and "must be absolute, e.g. /var/lib/hotline" in state
    assert db.startswith(f"{etc / 'hotline.yaml'}: database.url: 'sqlite:///.hotline/hotline.db' is a relative path")
    monkeypatch.setenv("HOTLINE_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.setenv("HOTLINE_DATABASE__URL", "sqlite:///hotline.db")
    with pytest.raises(ConfigError, match=r"^environment HOTLINE_DATABASE__URL: database.url: 'sqlite:///hotline.db' "
                                          r"is a relative path"):
        load_config()
    monkeypatch.setenv("HOTLINE_DATABASE__URL", f"sqlite:///{tmp_path}/state/hotline.db")
    assert load_config().state_dir == tmp_path / "state"


# ------------------------------------------------------------------ the command
def test_cli_config_check_reads_the_directory_the_environment_names(tmp_path):
    etc = etc_dir(tmp_path)
    url = f"postgresql+psycopg://hotline:{PASSWORD}@db.example/hotline"
    creds = secrets_dir(tmp_path, HOTLINE_DATABASE__URL=url)
    env = {**_clean_env(), "HOTLINE_CONFIG_DIR": str(etc), "CREDENTIALS_DIRECTORY": str(creds),
           "HOTLINE_REDIS__URL": "redis://127.0.0.1:6390/0", "COLUMNS": "1000"}   # rich wraps at the width

    def run(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "hotline.cli", *args, "config", "check"], env=env, cwd=ROOT,
                              capture_output=True, text=True, timeout=120)

    human = run()
    assert human.returncode == 0, human.stderr
    out = human.stderr
    assert f"config OK ({etc})" in out
    assert f"database.url: from secret file {creds / 'HOTLINE_DATABASE__URL'}" in out
    assert "redis.url: from environment HOTLINE_REDIS__URL" in out
    assert PASSWORD not in human.stdout + human.stderr
    # --config-dir beats the variable
    assert json.loads(subprocess.run(
        [sys.executable, "-m", "hotline.cli", "--config-dir", str(ROOT / "config"), "config", "check", "--json"],
        env=env, cwd=ROOT, capture_output=True, text=True, timeout=120).stdout)["config_dir"] == str(ROOT / "config")
    # --set is the top layer for the check too, and named as such
    over = run("--set", "asterisk.sip_port=99999")
    assert over.returncode == 2 and f"{sources.OVERRIDE}: asterisk.sip_port: Input should be less than" in over.stderr
    # a broken secret: exit 2, the file named, the value not shown
    (creds / "HOTLINE_DATABASE__URL").write_text(f"mysql://hotline:{PASSWORD}@db.example/hotline\n")
    bad = subprocess.run([sys.executable, "-m", "hotline.cli", "config", "check", "--json"], env=env, cwd=ROOT,
                         capture_output=True, text=True, timeout=120)
    assert bad.returncode == 2
    report = json.loads(bad.stdout)
    assert report["config_dir"] == str(etc)
    assert report["problems"][0]["file"] == f"secret file {creds / 'HOTLINE_DATABASE__URL'}"
    assert report["problems"][0]["field"] == "database.url"
    assert PASSWORD not in bad.stdout + bad.stderr


def test_up_hands_its_config_directory_and_overrides_to_the_daemons(tmp_path, monkeypatch):
    """`hotline up` starts the daemons with the --config-dir and --set it was given (they inherit its
    environment, so variables and the secrets directory follow by themselves)."""
    from hotline import ops
    from hotline.cli import build_parser
    from hotline.common import _config

    etc = etc_dir(tmp_path)
    args = build_parser().parse_args(["--config-dir", str(etc), "--set", "queues.max_callers=7", "up"])
    cfg = _config(args)
    cfg.state_dir.mkdir(parents=True)
    started = []

    class Recorder:     # records the command line instead of starting a daemon
        pid = 0

        def __init__(self, argv, **kw):
            started.append(argv)
    monkeypatch.setattr(ops.subprocess, "Popen", Recorder)
    ops._spawn_daemon(cfg, args, "interop")
    argv = started[0]
    assert argv[1:3] == ["-m", "hotline.cli"] and argv[-1] == "interop"
    child = _config(build_parser().parse_args(argv[3:]))
    assert child.config_dir == etc and child.system.queues.max_callers == 7
