"""Config loading: the shipped config is valid; broken files give errors naming file and field."""
import os
import subprocess
import sys
from pathlib import Path

import pytest

from core.config import ConfigError, load_config
from tests.config_tree import copy_tree, edit

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def tree(tmp_path):
    return copy_tree(tmp_path)


def test_shipped_config_is_valid():
    cfg = load_config(ROOT)
    assert len(cfg.cities) == 21
    assert {c.id for c in cfg.cities if c.area_code == "028"} == {"chengdu", "meishan", "ziyang"}
    assert {l.code for l in cfg.ivr.languages} == {"zh", "bo", "en", "ii"}   # Yi: Liangshan only


def test_bad_area_code_names_file_and_field(tree):
    edit(tree / "config/cities.yaml", lambda d: d["cities"][3].__setitem__("area_code", "83x"))
    with pytest.raises(ConfigError) as e:
        load_config(tree)
    msg = str(e.value)
    assert "config/cities.yaml" in msg and "cities[3].area_code" in msg and "83x" in msg


def test_shared_area_code_needs_exactly_one_default(tree):
    edit(tree / "config/cities.yaml", lambda d: d["cities"][0].pop("default"))
    with pytest.raises(ConfigError, match=r"cities.yaml.*area code 028 is shared"):
        load_config(tree)


def test_unknown_key_and_bad_port(tree):
    edit(tree / "config/hotline.yaml", lambda d: d["asterisk"].__setitem__("sip_prot", 5060))
    with pytest.raises(ConfigError, match=r"hotline.yaml: asterisk.sip_prot: Extra inputs"):
        load_config(tree)
    with pytest.raises(ConfigError, match=r"asterisk.ami_port: .*less than or equal to 65535"):
        load_config(ROOT, {"asterisk": {"ami_port": 99999}})


def test_agent_in_unknown_queue(tree):
    edit(tree / "config/agents.yaml", lambda d: d["agents"][0].__setitem__("queues", ["atlantis"]))
    with pytest.raises(ConfigError, match=r"agents.yaml: .*agents\[0\] \(agent1001\).queues: unknown city or pool 'atlantis'"):
        load_config(tree)


def test_ivr_prompt_missing_a_language(tree):
    edit(tree / "ivr_flows/hotline.yaml", lambda d: d["prompts"]["invalid"].pop("bo"))
    with pytest.raises(ConfigError, match=r"ivr_flows/hotline.yaml: .*prompts.invalid: no text for language\(s\) bo"):
        load_config(tree)


def test_invalid_yaml_reports_line(tree):
    (tree / "config/agents.yaml").write_text("agents:\n  - {id: agent1001, name: [unclosed\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"agents.yaml: line \d+ column \d+: invalid YAML"):
        load_config(tree)


def test_cli_prints_precise_error_and_exits_2(tree):
    edit(tree / "config/cities.yaml", lambda d: d["cities"][9].__setitem__("id", "Leshan City"))
    # rich wraps at 80 columns without a terminal: a long tmp path (pytest-xdist's popen-gwN) would split the id
    res = subprocess.run([sys.executable, "-m", "hotline.cli", "--root", str(tree), "config", "check"],
                         capture_output=True, text=True, cwd=ROOT, env={**os.environ, "COLUMNS": "500"})
    assert res.returncode == 2
    assert "cities[9].id" in res.stderr and "Leshan City" in res.stderr


def test_adding_a_language_needs_no_code(tree):
    """Yi (ii) for Liangshan came as data only (issue 20); the next one does too: Qiang (cng) for Aba,
    a language entry offered where configured and its prompt texts, nothing else."""
    def add_qiang(d):
        d["languages"].append({"code": "cng", "digit": "5", "name": "Rrmearr", "tts": None, "cities": ["aba"]})
        for texts in d["prompts"].values():
            texts["cng"] = "【待译】"  # placeholder text; real prompts come from Aba's staff
    edit(tree / "ivr_flows/hotline.yaml", add_qiang)
    edit(tree / "config/routing.yaml", lambda d: d["languages"].__setitem__("cng", {"served_by": "province"}))
    cfg = load_config(tree)
    from callcenter.asterisk.confgen import extensions_conf
    from core.paths import InstancePaths
    plan = extensions_conf(cfg, InstancePaths(Path("/r"), "x"))
    assert "exten => 5,1,NoOp(language-cng option 5)" in plan
    assert "Set(__HOTLINE_LANG=cng)" in plan and "/cng/lang_offer" in plan
    assert "[hotline-wf-language-aba-cng]" in plan  # Qiang speakers reach Qiang-speaking agents anywhere
    from ivr_flows.prompts import missing_recordings
    assert any(m.lang == "cng" for m in missing_recordings(cfg))


def test_asterisk_cores_of_its_own():
    """asterisk.cpus: the cores Asterisk has alone; the daemons get the rest of the machine's."""
    a = load_config(ROOT, {"asterisk": {"cpus": [0]}}).system.asterisk
    assert a.daemon_cpus({0, 1, 2, 3}) == {1, 2, 3}
    assert load_config(ROOT).system.asterisk.daemon_cpus({0, 1}) is None      # not set: every core for all
    with pytest.raises(ValueError, match=r"asterisk.cpus \[?cores 0,1\]? takes every core"):
        load_config(ROOT, {"asterisk": {"cpus": [1, 0]}}).system.asterisk.daemon_cpus({0, 1})
    with pytest.raises(ValueError, match=r"core 5 is not among this machine's cores 0,1"):
        load_config(ROOT, {"asterisk": {"cpus": [5]}}).system.asterisk.daemon_cpus({0, 1})
    with pytest.raises(ConfigError, match=r"asterisk.cpus: .*empty list leaves Asterisk no core"):
        load_config(ROOT, {"asterisk": {"cpus": []}})
    with pytest.raises(ConfigError, match=r"asterisk.cpus: .*core 2 is listed twice"):
        load_config(ROOT, {"asterisk": {"cpus": [2, 3, 2]}})
    with pytest.raises(ConfigError, match=r"asterisk.cpus\[0\]: Input should be greater than or equal to 0 \(got -1\)"):
        load_config(ROOT, {"asterisk": {"cpus": [-1]}})
