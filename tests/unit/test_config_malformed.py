"""Malformed config files: every case is a ConfigError naming the file and the field, never another
exception. Each case copies config/ and ivr_flows/ into a temporary root and breaks one file.
(tests/unit/test_config.py has the first cases: bad area code, shared code default, sip_prot, ami_port,
agent in an unknown queue, a prompt missing a language, unclosed YAML in agents.yaml, the CLI.)"""
from __future__ import annotations

import math
import shutil
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from core.config import ConfigError, load_config
from tests.config_tree import copy_tree, edit

ROOT = Path(__file__).resolve().parents[2]
FILES = ("config/hotline.yaml", "config/cities.yaml", "config/agents.yaml", "config/routing.yaml",
         "config/rotas.yaml", "config/holidays.yaml", "config/green_registry.yaml", "ivr_flows/hotline.yaml",
         "config/tickets.yaml", "config/legal_aid.yaml", "config/legal_aid_centers.yaml", "config/keywords.yaml",
         "config/partners.yaml")
FILES += ("config/legal_aid_offices.yaml",)   # issue 19


@pytest.fixture
def tree(tmp_path):
    return copy_tree(tmp_path)


def replace(path: Path, old: str, new: str) -> None:
    text = path.read_text(encoding="utf-8")
    assert old in text, f"{old!r} is no longer in {path.name}: update this test"
    path.write_text(text.replace(old, new, 1), encoding="utf-8")


def expect(tree: Path, rel: str, *fragments: str) -> str:
    """load_config fails with a ConfigError whose message starts with the file (its path, or its
    name for cross-file checks) and contains every fragment (the field, the bad value...)."""
    with pytest.raises(ConfigError) as e:
        load_config(tree)
    msg = str(e.value)
    assert msg.startswith((f"{tree / rel}:", f"{Path(rel).name}:")), msg
    for f in fragments:
        assert f in msg, (f, msg)
    assert "Traceback" not in msg
    return msg


def by_id(items: list, ident: str) -> dict:
    return next(x for x in items if x["id"] == ident)


# ------------------------------------------------------------------ not YAML, not a mapping
@pytest.mark.parametrize("rel", FILES)
def test_empty_file(tree, rel):
    (tree / rel).write_text("", encoding="utf-8")
    expect(tree, rel, "expected a mapping at the top level, got NoneType")


@pytest.mark.parametrize("rel,text,got", [("config/cities.yaml", "- leshan\n- chengdu\n", "list"),
                                          ("ivr_flows/hotline.yaml", "just some words\n", "str"),
                                          ("config/routing.yaml", "42\n", "int")])
def test_top_level_is_not_a_mapping(tree, rel, text, got):
    (tree / rel).write_text(text, encoding="utf-8")
    expect(tree, rel, f"got {got}")


@pytest.mark.parametrize("rel", ["config/hotline.yaml", "config/agents.yaml", "ivr_flows/hotline.yaml"])
def test_binary_garbage(tree, rel):
    (tree / rel).write_bytes(bytes(range(256)) * 4)
    expect(tree, rel, "not UTF-8 text")


def test_utf16_file_is_not_utf8(tree):
    rel = "config/cities.yaml"
    (tree / rel).write_bytes((ROOT / rel).read_text(encoding="utf-8").encode("utf-16"))
    expect(tree, rel, "not UTF-8 text", "byte 0")


def test_control_characters(tree):
    rel = "config/green_registry.yaml"
    (tree / rel).write_text('callers:\n  "137\x0000": elderly\n', encoding="utf-8")
    expect(tree, rel, "invalid YAML", "special characters are not allowed")


@pytest.mark.parametrize("rel,old,new", [
    # a tab where indentation belongs
    ("ivr_flows/hotline.yaml", "\n  city: {timeout_seconds", "\n\tcity: {timeout_seconds"),
    # an unclosed quote
    ("config/routing.yaml", "timezone: Asia/Shanghai", 'timezone: "Asia/Shanghai'),
    # a key indented under a scalar
    ("config/hotline.yaml", "  sip_port: 5060", "    sip_port: 5060"),
])
def test_yaml_syntax_errors_give_line_and_column(tree, rel, old, new):
    replace(tree / rel, old, new)
    msg = expect(tree, rel, "invalid YAML", "line ", "column ")
    reported = int(msg.split("line ", 1)[1].split()[0])
    lines = (tree / rel).read_text(encoding="utf-8").splitlines()
    broken = next(i for i, l in enumerate(lines, start=1) if new.strip("\n") in l)
    assert broken <= reported <= len(lines) + 1


@pytest.mark.parametrize("rel", ["config/routing.yaml", "ivr_flows/hotline.yaml", "config/cities.yaml"])
def test_missing_file(tree, rel):
    (tree / rel).unlink()
    expect(tree, rel, "file not found")


# ------------------------------------------------------------------ wrong types, bad values
@pytest.mark.parametrize("section,key,value,fragment", [
    ("asterisk", "sip_port", "five", "asterisk.sip_port: Input should be a valid integer"),
    ("asterisk", "sip_bind", "localhost", "asterisk.sip_bind"),
    ("asterisk", "rtp_end", 10010, "rtp_end (10010) must be at least rtp_start+20"),
    ("trunk", "codecs", "alaw", "trunk.codecs: Input should be a valid list"),
    ("trunk", "codecs", ["alaw", "g729"], "unsupported codecs ['g729']"),
    ("trunk", "match", ["10.0.0.300/32"], "trunk.match"),
    ("trunk", "outbound", "sip:carrier sbc", "trunk.outbound"),
    ("queues", "strategy", "roundrobin", "unknown strategy 'roundrobin'"),
    ("queues", "max_callers", 0, "queues.max_callers: Input should be greater than or equal to 1"),
    ("database", "url", "mysql://db/hotline", "database.url"),
    ("controller", "http_port", [8348], "controller.http_port: Input should be a valid integer"),
    ("federation", "mode", "city", "federation.command_center_url"),
])
def test_system_settings_wrong_type_or_value(tree, section, key, value, fragment):
    edit(tree / "config/hotline.yaml", lambda d: d[section].__setitem__(key, value))
    expect(tree, "config/hotline.yaml", fragment)


def test_section_is_a_scalar(tree):
    edit(tree / "config/hotline.yaml", lambda d: d.__setitem__("controller", "yes"))
    expect(tree, "config/hotline.yaml", "controller: Input should be a valid dictionary", "'yes'")


def test_required_section_missing(tree):
    edit(tree / "config/hotline.yaml", lambda d: d.pop("trunk"))
    expect(tree, "config/hotline.yaml", "trunk: Field required")


def test_follow_up_calling_hours_backwards(tree):
    edit(tree / "config/hotline.yaml",
         lambda d: d.setdefault("controller", {}).setdefault("follow_up", {}).__setitem__("calling_hours", "20:00-09:00"))
    expect(tree, "config/hotline.yaml", "controller.follow_up.calling_hours", "start must be before end")


def test_unquoted_area_code_read_as_octal(tree):
    """YAML reads 0777 as the octal number 511: the message shows what YAML made of it."""
    replace(tree / "config/cities.yaml", 'area_code: "0813"', "area_code: 0777")
    expect(tree, "config/cities.yaml", "cities[1].area_code", "Input should be a valid string", "511")


@pytest.mark.parametrize("code", ["", "0012", "08333", "o833", "12348"])
def test_bad_area_codes(tree, code):
    edit(tree / "config/cities.yaml", lambda d: by_id(d["cities"], "leshan").__setitem__("area_code", code))
    i = [c["id"] for c in yaml.safe_load((tree / "config/cities.yaml").read_text(encoding="utf-8"))["cities"]].index("leshan")
    expect(tree, "config/cities.yaml", f"cities[{i}].area_code", "should match pattern")


def test_city_name_missing_a_language(tree):
    edit(tree / "config/cities.yaml", lambda d: d["cities"][0]["names"].pop("bo"))
    expect(tree, "config/cities.yaml", "cities[0].names.bo: Field required")


def test_ten_cities_cannot_share_an_area_code(tree):
    def crowd(d):
        for c in d["cities"][:10]:
            c["area_code"], c["default"] = "028", c["id"] == d["cities"][0]["id"]
    edit(tree / "config/cities.yaml", crowd)
    expect(tree, "config/cities.yaml", "area code 028: at most 9 cities")


@pytest.mark.parametrize("fn,fragment", [
    (lambda d: d["agents"][0]["specialties"].__setitem__("labour", 7),
     "agents[0].specialties.labour: Input should be less than or equal to 5"),
    (lambda d: d["agents"][0].__setitem__("gender", "x"), "agents[0].gender"),
    (lambda d: d["agents"][0].__setitem__("queues", []), "agents[0].queues: List should have at least 1 item"),
    (lambda d: d["agents"][0].__setitem__("id", "Agent 1001"), "agents[0].id: String should match pattern"),
    (lambda d: d["interpreters"][0].__setitem__("number", "+86 138 0000 0000"), "interpreters[0].number"),
    (lambda d: d["supervisors"][0].__setitem__("role", "boss"), "supervisors[0].role"),
    (lambda d: d["supervisors"][0].__setitem__("cities", []), "supervisor sup_leshan needs at least one city"),
    (lambda d: d["wallboards"][0].__setitem__("role", "command"), "wallboards[0].role"),
    (lambda d: d["wallboards"][0].__setitem__("id", d["agents"][0]["id"]), "duplicate agent ids: ['agent1001']"),
])
def test_agents_wrong_type_or_value(tree, fn, fragment):
    edit(tree / "config/agents.yaml", fn)
    expect(tree, "config/agents.yaml", fragment)


@pytest.mark.parametrize("fn,fragment", [
    (lambda d: d.__setitem__("version", "one"), "version: Input should be a valid integer"),
    (lambda d: d["menus"]["language"].__setitem__("timeout_seconds", 0), "menus.language.timeout_seconds"),
    (lambda d: d["languages"][0].__setitem__("digit", "10"), "languages[0].digit"),
    (lambda d: d["languages"][0].__setitem__("code", "ZH"), "languages[0].code"),
    (lambda d: d["menus"]["service"]["options"][0].__setitem__("service", "divorce"), "unknown service 'divorce'"),
    (lambda d: d["prompts"].__setitem__("Greeting2", {"zh": "x", "bo": "x", "en": "x"}),
     "prompts.Greeting2: prompt ids are lower-case"),
    (lambda d: d["prompts"].pop("voicemail"), "prompts.voicemail is missing"),
])
def test_ivr_wrong_type_or_value(tree, fn, fragment):
    edit(tree / "ivr_flows/hotline.yaml", fn)
    expect(tree, "ivr_flows/hotline.yaml", fragment)


@pytest.mark.parametrize("fn,fragment", [
    (lambda d: d["workflows"]["standard"][0].__setitem__("wait", 1), "workflows.standard[0].wait"),
    (lambda d: d["workflows"]["standard"][0].__setitem__("target", "mars"), "workflows.standard[0].target"),
    (lambda d: d["workflows"].__setitem__("standard", []), "workflows.standard: needs at least one step"),
    (lambda d: d["workflows"].pop("night"), "workflows: missing ['night']"),
    (lambda d: d.__setitem__("timezone", "Mars/Olympus_Mons"), "unknown timezone 'Mars/Olympus_Mons'"),
    (lambda d: d["green_channel"]["categories"][0].__setitem__("digit", "x"), "green_channel.categories[0].digit"),
    (lambda d: d["overflow"].__setitem__("waiting_per_agent", "three"), "overflow.waiting_per_agent"),
    (lambda d: d["transfer_numbers"].__setitem__("12-345", "x"), "transfer_numbers"),
])
def test_routing_wrong_type_or_value(tree, fn, fragment):
    edit(tree / "config/routing.yaml", fn)
    expect(tree, "config/routing.yaml", fragment)


def test_transfer_number_unquoted_is_an_int_key(tree):
    replace(tree / "config/routing.yaml", '"12345":', "12345:")
    expect(tree, "config/routing.yaml", "transfer_numbers", "Input should be a valid string", "12345")


def test_green_registry_callers_not_a_mapping(tree):
    (tree / "config/green_registry.yaml").write_text("callers: [13700000080, 13700000081]\n", encoding="utf-8")
    expect(tree, "config/green_registry.yaml", "callers: expected a mapping")


# ------------------------------------------------------------------ unknown keys
@pytest.mark.parametrize("rel,fn,field", [
    ("config/hotline.yaml", lambda d: d.__setitem__("asterix", {}), "asterix"),
    ("config/cities.yaml", lambda d: d["cities"][0].__setitem__("population", 21_000_000), "cities[0].population"),
    ("config/agents.yaml", lambda d: d["interpreters"][0].__setitem__("phone", "123"), "interpreters[0].phone"),
    ("ivr_flows/hotline.yaml", lambda d: d["menus"]["service"]["options"][0].__setitem__("label", "x"),
     "menus.service.options[0].label"),
    ("config/routing.yaml", lambda d: d["workflows"]["standard"][0].__setitem__("priority", 5),
     "workflows.standard[0].priority"),
    ("config/routing.yaml", lambda d: d["schedules"]["default"].__setitem__("weekley", {}), "schedules.default.weekley"),
])
def test_unknown_keys(tree, rel, fn, field):
    edit(tree / rel, fn)
    expect(tree, rel, f"{field}: Extra inputs are not permitted")


# ------------------------------------------------------------------ duplicates
def test_duplicate_city_ids(tree):
    edit(tree / "config/cities.yaml", lambda d: d["cities"][1].__setitem__("id", d["cities"][2]["id"]))
    dup = yaml.safe_load((tree / "config/cities.yaml").read_text(encoding="utf-8"))["cities"][2]["id"]
    expect(tree, "config/cities.yaml", f"duplicate city ids: ['{dup}']")


def test_province_pool_clashes_with_a_city(tree):
    edit(tree / "config/cities.yaml", lambda d: d["province_pool"].__setitem__("id", "leshan"))
    expect(tree, "config/cities.yaml", "province_pool.id 'leshan' clashes with a city id")


def test_duplicate_agent_ids_across_roles(tree):
    edit(tree / "config/agents.yaml", lambda d: d["supervisors"][0].__setitem__("id", d["agents"][0]["id"]))
    expect(tree, "config/agents.yaml", "duplicate agent ids: ['agent1001']")


@pytest.mark.parametrize("fn,fragment", [
    (lambda d: d["languages"][1].__setitem__("code", d["languages"][0]["code"]), "duplicate language codes"),
    (lambda d: d["languages"][1].__setitem__("digit", d["languages"][0]["digit"]), "duplicate language digits"),
    (lambda d: d["menus"]["service"]["options"][1].__setitem__("digit", "1"), "duplicate digits in options"),
])
def test_ivr_duplicates(tree, fn, fragment):
    edit(tree / "ivr_flows/hotline.yaml", fn)
    expect(tree, "ivr_flows/hotline.yaml", fragment)


# ------------------------------------------------------------------ references to what does not exist
@pytest.mark.parametrize("rel,fn,name,fragment", [
    ("config/routing.yaml", lambda d: d["neighbours"]["leshan"].append("atlantis"), "routing.yaml",
     "neighbours.leshan: unknown city 'atlantis'"),
    ("config/routing.yaml", lambda d: d["schedules"]["cities"].__setitem__("atlantis", {"always_open": True}),
     "routing.yaml", "schedules.cities: unknown city 'atlantis'"),
    ("config/routing.yaml", lambda d: d["languages"].pop("en"), "routing.yaml",
     "languages: no routing for IVR language 'en'"),
    ("config/routing.yaml", lambda d: d["services"].__setitem__("mediation", "divorce"), "config/routing.yaml",
     "services.mediation: 'divorce' is not in specialties"),
    ("config/routing.yaml", lambda d: d["green_channel"]["categories"][0].__setitem__("workflow", "express"),
     "config/routing.yaml", "workflows: missing ['express']"),
    ("config/routing.yaml", lambda d: d["green_channel"].__setitem__("digit", "1"), "routing.yaml",
     "green_channel.digit 1 is already a service menu digit"),
    ("config/routing.yaml", lambda d: d["service_workflows"].__setitem__("astrology", "complaint"), "routing.yaml",
     "service_workflows.astrology: not a service of the IVR's service menu"),
    ("config/routing.yaml", lambda d: d["green_channel"]["categories"][6].__setitem__("skill", "juggling"),
     "config/routing.yaml", "green_channel.categories (minor).skill: 'juggling' is neither 'female' nor in specialties"),
    ("config/routing.yaml", lambda d: d["green_channel"]["categories"][5].__setitem__("night_workflow", "moonlight"),
     "config/routing.yaml", "workflows: missing ['moonlight']"),
    ("config/routing.yaml", lambda d: d["schedules"].__setitem__("holidays", "holidays-2027.yaml"),
     "config/holidays-2027.yaml", "file not found"),
    ("config/agents.yaml", lambda d: d["agents"][0].__setitem__("languages", ["zh", "fr"]), "config/agents.yaml",
     "agents[0] (agent1001).languages: 'fr' is not an IVR language"),
    ("config/agents.yaml", lambda d: d["agents"][0]["specialties"].__setitem__("tax", 3), "config/agents.yaml",
     "agents[0] (agent1001).specialties: unknown specialty 'tax'"),
    ("config/agents.yaml", lambda d: d["supervisors"][0].__setitem__("cities", ["atlantis"]), "config/agents.yaml",
     "supervisors[0] (sup_leshan).cities: unknown city or pool 'atlantis'"),
    ("config/agents.yaml", lambda d: d["wallboards"][1].__setitem__("cities", ["atlantis"]), "config/agents.yaml",
     "wallboards[1] (wall_leshan).cities: unknown city or pool 'atlantis'"),
    ("config/rotas.yaml", lambda d: d["rotas"].__setitem__("agent9999", {"mon": ["08:00-12:00"]}), "config/rotas.yaml",
     "rotas.agent9999: unknown agent"),
    ("config/green_registry.yaml", lambda d: d["callers"].__setitem__("13700000099", "vip"), "green_registry.yaml",
     "13700000099: unknown category 'vip'"),
    ("ivr_flows/hotline.yaml", lambda d: d.__setitem__("default_language", "fr"), "ivr_flows/hotline.yaml",
     "default_language 'fr' is not in languages"),
    ("ivr_flows/hotline.yaml", lambda d: d["menus"]["service"].__setitem__("default", "complaint_x"),
     "ivr_flows/hotline.yaml", "default 'complaint_x' is not one of the options"),
])
def test_references_to_unknown_things(tree, rel, fn, name, fragment):
    edit(tree / rel, fn)
    expect(tree, name, fragment)


# ------------------------------------------------------------------ times and dates
@pytest.mark.parametrize("days,hours,fragment", [
    ("mon-fri", ["08:30-25:00"], "hours '08:30-25:00'"),
    ("mon-fri", ["8:30-21:00"], "hours '8:30-21:00': use HH:MM-HH:MM"),
    ("mon-fri", ["17:00-09:00"], "start must be before end"),
    ("mon-fri", ["08:30-24:30"], "hours '08:30-24:30'"),
    ("fri-mon", ["08:30-21:00"], "day range 'fri-mon' runs backwards"),
    ("weekdays", ["08:30-21:00"], "day range 'weekdays'"),
])
def test_bad_opening_hours(tree, days, hours, fragment):
    edit(tree / "config/routing.yaml", lambda d: d["schedules"]["default"].__setitem__("weekly", {days: hours}))
    expect(tree, "config/routing.yaml", "weekly: ", fragment)


def test_bad_default_hours_name_the_default_schedule(tree):
    edit(tree / "config/routing.yaml",
         lambda d: d["schedules"]["default"].__setitem__("weekly", {"mon-fri": ["08:30-25:00"]}))
    expect(tree, "config/routing.yaml", "schedules.default.weekly")


def test_bad_hours_in_a_city_schedule(tree):
    edit(tree / "config/routing.yaml",
         lambda d: d["schedules"]["cities"].__setitem__("leshan", {"weekly": {"sat": ["09:00-12:60"]}}))
    expect(tree, "config/routing.yaml", "schedules.cities.leshan.weekly", "hours '09:00-12:60'")


def test_hours_not_a_list(tree):
    edit(tree / "config/routing.yaml",
         lambda d: d["schedules"]["default"].__setitem__("weekly", {"mon-fri": "08:30-21:00"}))
    expect(tree, "config/routing.yaml", "schedules.default.weekly.mon-fri: Input should be a valid list")


@pytest.mark.parametrize("weekly,fragment", [
    ({"mon-fri": ["08:30-17:60"]}, "hours '08:30-17:60'"),
    ({"mon-funday": ["08:30-17:00"]}, "day range 'mon-funday'"),
    ({"mon": [830]}, "rotas.agent1001"),
    ("always", "rotas.agent1001: expected day ranges mapped to lists of hours"),
])
def test_bad_rota(tree, weekly, fragment):
    edit(tree / "config/rotas.yaml", lambda d: d["rotas"].__setitem__("agent1001", weekly))
    expect(tree, "config/rotas.yaml", fragment)


@pytest.mark.parametrize("entry,fragment", [
    ("2026-02-30", "day is out of range for month"),     # (nor the value, here)
    ("2026-05-05..2026-05-01", "runs backwards"),
    ("next monday", "next monday"),
])
def test_bad_holiday_dates(tree, entry, fragment):
    # (the message names the file and the value, not the year or list: config.py says only `{hpath}: {e}`)
    edit(tree / "config/holidays.yaml", lambda d: d[2026]["closed"].append(entry))
    expect(tree, "config/holidays.yaml", fragment)


# ------------------------------------------------------------------ odd shapes that once raised something else
def test_rota_day_range_not_a_string(tree):
    edit(tree / "config/rotas.yaml", lambda d: d["rotas"].__setitem__("agent1001", {1: ["08:30-17:00"]}))
    expect(tree, "config/rotas.yaml", "rotas.agent1001")


def test_rotas_is_a_list(tree):
    (tree / "config/rotas.yaml").write_text("rotas: [agent1001, agent1008]\n", encoding="utf-8")
    expect(tree, "config/rotas.yaml", "rotas")


def test_config_file_is_a_directory(tree):
    (tree / "config/agents.yaml").unlink()
    (tree / "config/agents.yaml").mkdir()
    expect(tree, "config/agents.yaml")


def test_deeply_nested_yaml(tree):
    (tree / "config/hotline.yaml").write_text("node: " + "[" * 3000 + "]" * 3000 + "\n", encoding="utf-8")
    expect(tree, "config/hotline.yaml")


# ------------------------------------------------------------------ random mutations (hypothesis)
FUZZ = settings(max_examples=40, deadline=None, derandomize=True, database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
FUZZED = ("config/hotline.yaml", "ivr_flows/hotline.yaml")

scalar = st.one_of(st.none(), st.booleans(), st.integers(), st.integers(-10, 70000),
                   st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=20),
                   st.sampled_from(["", "0", "yes", "08:30-17:00", "25:00-26:00", "0833", "083312348", "zh", "province",
                                    "127.0.0.1", "::1", "0.0.0.0/0", "sip:127.0.0.1:5070", "sqlite:///x.db", "pkg:vosk",
                                    "/", "..", "~", "x" * 5000, "城市", "ཁྲེང་ཏུའུ", "{city}", "{n}{digit}", "%s"]))
yaml_value = st.recursive(scalar, lambda inner: st.one_of(
    st.lists(inner, max_size=3), st.dictionaries(st.one_of(st.text(max_size=10), st.integers(0, 99)), inner, max_size=3)),
    max_leaves=6)


def paths(node, prefix=()):
    """Every place in a YAML document: mapping keys and list items, at any depth."""
    yield prefix
    if isinstance(node, dict):
        for k, v in node.items():
            yield from paths(v, prefix + (k,))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            yield from paths(v, prefix + (i,))


@st.composite
def mutated(draw, rel: str):
    data = yaml.safe_load((ROOT / rel).read_text(encoding="utf-8"))
    for _ in range(draw(st.integers(1, 3))):
        where = draw(st.sampled_from([p for p in paths(data) if p]))
        parent = data
        for step in where[:-1]:
            parent = parent[step]
        key = where[-1]
        op = draw(st.sampled_from(["set", "set", "set", "delete", "add_key", "wrap"]))
        if op == "set":
            parent[key] = draw(yaml_value)
        elif op == "delete":
            del parent[key]
        elif op == "add_key" and isinstance(parent, dict):
            parent[draw(st.text(min_size=1, max_size=12))] = draw(yaml_value)
        elif op == "wrap":
            parent[key] = [parent[key]] if draw(st.booleans()) else {"value": parent[key]}
    return yaml.safe_dump(data, allow_unicode=True, sort_keys=False)


@st.composite
def mangled_text(draw, rel: str):
    raw = (ROOT / rel).read_bytes()
    for _ in range(draw(st.integers(1, 3))):
        at = draw(st.integers(0, len(raw)))
        op = draw(st.sampled_from(["insert", "delete", "truncate"]))
        if op == "insert":
            raw = raw[:at] + draw(st.one_of(st.binary(max_size=8), st.sampled_from(
                [b":", b": ", b"- ", b"\t", b"\n  ", b"&a ", b"*a", b"!!python/object ", b"!!binary ", b"{", b"[", b"'",
                 b'"', b"#", b"%YAML 1.1\n", b"---\n", b"...\n", b"? ", b"|\n", b"\xe5\x9f"]))) + raw[at:]
        elif op == "delete":
            raw = raw[:at] + raw[at + draw(st.integers(1, 40)):]
        else:
            raw = raw[:at]
    return raw


def loads_or_config_error(root: Path) -> None:
    try:
        cfg = load_config(root)
    except ConfigError as e:
        msg = str(e)
        assert msg and ".yaml" in msg.split(":", 1)[0], msg     # still says which file
    else:
        assert cfg.cities and cfg.ivr.languages
        for v in (cfg.system.asterisk.sip_port, cfg.system.queues.ring_seconds):
            assert isinstance(v, int) and not isinstance(v, bool)
        assert all(math.isfinite(x) for x in (cfg.system.controller.rota_interval_seconds,
                                              cfg.system.controller.session_idle_minutes))


@pytest.fixture(scope="module")
def fuzz_root(tmp_path_factory):
    return copy_tree(tmp_path_factory.mktemp("cfgfuzz"))


@pytest.mark.parametrize("rel", FUZZED)
def test_random_value_mutations_load_or_raise_config_error(fuzz_root, rel):
    @FUZZ
    @given(mutated(rel))
    def check(text):
        (fuzz_root / rel).write_text(text, encoding="utf-8")
        try:
            loads_or_config_error(fuzz_root)
        finally:
            shutil.copyfile(ROOT / rel, fuzz_root / rel)
    check()


@pytest.mark.parametrize("rel", FUZZED)
def test_random_text_damage_loads_or_raises_config_error(fuzz_root, rel):
    @settings(FUZZ, max_examples=30)
    @given(mangled_text(rel))
    def check(raw):
        (fuzz_root / rel).write_bytes(raw)
        try:
            loads_or_config_error(fuzz_root)
        finally:
            shutil.copyfile(ROOT / rel, fuzz_root / rel)
    check()
