"""`hotline config check` checks every config file through the one loader and generates the Asterisk
config: one broken value in any file is named (file and field) and the exit code is non-zero."""
import json
import subprocess
import sys

import pytest

from hotline.config_check import check, parse_error
from tests.config_tree import ROOT, copy_tree, edit


def _set(*path_and_value):
    *path, value = path_and_value

    def fn(data):
        node = data
        for key in path[:-1]:
            node = node[key]
        node[path[-1]] = value
    return fn


# one broken value per file: (file, how it is broken, the field the report must name)
BREAKS = [
    ("config/hotline.yaml", _set("queues", "ring_seconds", -5), "queues.ring_seconds"),
    ("config/hotline.yaml", _set("numbering_plan", "area_codes", ["833"]), "numbering_plan.area_codes[0]"),
    ("config/hotline.yaml", _set("privacy", "caller_number_retention_days", 0), "privacy.caller_number_retention_days"),
    # the prefix names the Redis ACL user and its key and channel patterns: no glob characters
    ("config/hotline.yaml", _set("redis", "prefix", "hotline:*"), "redis.prefix"),
    ("config/hotline.yaml", _set("audit", "retention_days", 30), "audit.retention_days"),
    ("config/hotline.yaml", _set("trunk", "transport", "sips"), "trunk.transport"),
    # the admin's modules are file names (modules.conf `load =` lines), not free text
    ("config/hotline.yaml", _set("asterisk", "extra_modules", ["res_snmp.so", "snmp"]),
     "asterisk.extra_modules: Value error, [1] 'snmp' is not an Asterisk module file name"),
    ("config/cities.yaml", lambda d: d["cities"][3].__setitem__("area_code", "12x"), "cities[3].area_code"),
    ("config/agents.yaml", lambda d: d["agents"][0].__setitem__("queues", ["atlantis"]), "queues"),
    ("config/routing.yaml", _set("green_channel", "digit", "x"), "green_channel.digit"),
    ("config/rotas.yaml", _set("rotas", "agent9999", {"mon-fri": ["08:00-17:00"]}), "rotas.agent9999"),
    ("config/holidays.yaml", lambda d: d[2026]["closed"].append("2026-13-45"), ""),
    ("config/green_registry.yaml", _set("callers", "13700000080", "astronaut"), "13700000080"),
    # issue 16, finding 4: one caller written twice (the registry is keyed by E.164), and a key that is no number
    ("config/green_registry.yaml", _set("callers", "+8613700000081", "elderly"), "13700000081 and +8613700000081"),
    ("config/green_registry.yaml", _set("callers", "1370000008O", "elderly"), "'1370000008O' is not a phone number"),
    ("ivr_flows/hotline.yaml", lambda d: d["languages"][0].__setitem__("digit", "x"), "languages[0].digit"),
    ("config/tickets.yaml", _set("deadline_hours", "default", -1), "deadline_hours.default"),
    ("config/legal_aid.yaml", _set("hardship", "default", "multiple", -2), "hardship.default.multiple"),
    ("config/legal_aid_centers.yaml", lambda d: d["centers"][0].__setitem__("capacity", 0), "centers[0].capacity"),
    ("config/keywords.yaml", _set("topics", "self_harm", "category", "astrology"), "topics.self_harm.category"),
    ("config/partners.yaml", _set("partners", "12345", "endpoints", "default", "ftp://x"), "partners.12345.endpoints"),
    ("config/models.yaml", lambda d: d["models"]["zh"][0].__setitem__("sha256", "not-hex"), "models.zh[0].sha256"),
    ("config/legal_aid_offices.yaml", lambda d: d["offices"][0].__setitem__("code", "990100"), "offices[0].code"),
    ("config/legal_aid.yaml", _set("rules", "art32_abuse_victim", "source", "rumour"), "rules.art32_abuse_victim.source"),
    ("config/knowledge.yaml", lambda d: d["entries"][0].__setitem__("category", "astrology"), "entries.0.category"),
    # an SMSC account needs its address (issue 20): the section and field are named
    ("config/hotline.yaml", lambda d: d.__setitem__("sms", {"enabled": True, "system_id": "hotline"}), "sms"),
    ("config/local_holidays.yaml", lambda d: d["cities"]["ganzi"][0].__setitem__("days", "2027-02-07"),
     "cities.ganzi[0].days"),
]


def test_shipped_config_passes_every_check():
    report = check(ROOT)
    assert report.ok, report.problems
    s = report.summary
    assert s["cities"] == 21 and s["ticket_categories"] > 0 and s["legal_aid_centers"] > 0
    assert "12345" in s["partners"] and "extensions.conf" in s["asterisk_files"]


@pytest.mark.parametrize("rel, breaker, field", BREAKS, ids=[b[0] for b in BREAKS])
def test_one_broken_value_in_each_file_is_named(tmp_path, rel, breaker, field):
    tree = copy_tree(tmp_path)
    edit(tree / rel, breaker)
    report = check(tree)
    assert not report.ok
    named = [p for p in report.problems if p.file.endswith(rel.split("/")[-1])]
    assert named, report.problems
    assert any(field in f"{p.field}: {p.message}" for p in named), report.problems


def test_every_config_file_is_covered():
    """A new config file needs a line in BREAKS: `config check` must see it."""
    shipped = {f"config/{p.name}" for p in (ROOT / "config").glob("*.yaml")} | {"ivr_flows/hotline.yaml"}
    assert shipped == {b[0] for b in BREAKS}


def test_cli_json_report_and_exit_codes(tmp_path):
    tree = copy_tree(tmp_path)
    ok = subprocess.run([sys.executable, "-m", "hotline.cli", "--root", str(tree), "config", "check", "--json"],
                        capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert ok.returncode == 0, ok.stderr
    assert json.loads(ok.stdout)["ok"] is True
    edit(tree / "config/tickets.yaml", _set("deadline_hours", "default", -1))
    bad = subprocess.run([sys.executable, "-m", "hotline.cli", "--root", str(tree), "config", "check", "--json"],
                         capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert bad.returncode == 2
    report = json.loads(bad.stdout)
    assert report["ok"] is False
    assert report["problems"][0]["file"] == "config/tickets.yaml"
    assert report["problems"][0]["field"] == "deadline_hours.default"
    human = subprocess.run([sys.executable, "-m", "hotline.cli", "--root", str(tree), "config", "check"],
                           capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert human.returncode == 2 and "config/tickets.yaml: deadline_hours.default" in human.stderr


def test_error_lines_are_split_into_file_field_and_message(tmp_path):
    text = (f"{tmp_path}/config/cities.yaml: cities[3].area_code: String should match pattern\n"
            f"{tmp_path}/config/agents.yaml: line 2 column 5: invalid YAML: found unexpected end")
    a, b = parse_error(text, tmp_path)
    assert (a.file, a.field) == ("config/cities.yaml", "cities[3].area_code")
    assert (b.file, b.field) == ("config/agents.yaml", "") and "invalid YAML" in b.message


def test_the_admins_asterisk_files_are_checked_as_setup_would(tmp_path):
    """An instance's custom/*_custom.conf (docs/operations.md) that setup would refuse is named by
    `config check` too, with the file's path."""
    tree = copy_tree(tmp_path / "tree")
    overrides = {"asterisk": {"rootfs": str(tmp_path / "rootfs"), "instance": "lab"}}
    assert check(tree, overrides).ok                        # no instance yet: nothing of the admin's to check
    custom = tmp_path / "rootfs/srv/hotline/lab/etc/custom"
    custom.mkdir(parents=True)
    (custom / "extensions_custom.conf").write_text("[hotline-hook-inbound]\nexten => s,1,NoOp()\n")
    report = check(tree, overrides)
    assert not report.ok
    assert [(p.file, p.message) for p in report.problems] == [
        (str(custom / "extensions_custom.conf"), "[hotline-hook-inbound] has no Return(): the call would end in the hook")]
