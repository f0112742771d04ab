"""Who may do what (core.access), table-driven, over the shipped config's users."""
from pathlib import Path

import pytest

from core import access
from core.config import load_config

ROOT = Path(__file__).resolve().parents[2]
CFG = load_config(ROOT)
USERS = access.principals(CFG)
HOME = {a.id: set(a.queues) for a in CFG.agents}


def test_every_agent_and_supervisor_has_a_login_interpreters_do_not():
    assert {a.id for a in CFG.agents} | {s.id for s in CFG.supervisors} | {w.id for w in CFG.wallboards} == set(USERS)
    assert USERS["agent1001"].role == "agent" and USERS["agent1001"].agent_id == "agent1001"
    assert USERS["sup_leshan"].cities == {"leshan"} and USERS["command1"].all_cities
    assert "interp2001" not in USERS


@pytest.mark.parametrize("user, agent, allowed", [
    ("agent1001", "agent1001", True),      # one's own desk
    ("agent1001", "agent1008", False),     # a colleague in the same city
    ("sup_leshan", "agent1008", True),     # an agent of one's city
    ("sup_leshan", "agent1002", False),    # Chengdu's agent
    ("sup_ganzi", "agent1005", True),      # homed in ganzi and aba
    ("command1", "agent1006", True),       # the provincial pool: command center only
    ("sup_chengdu", "agent1006", False),
])
def test_manage_agent(user, agent, allowed):
    assert access.may_manage_agent(USERS[user], agent, HOME[agent]) is allowed


@pytest.mark.parametrize("user, call_agent, city, handle, supervise", [
    ("agent1001", "agent1001", "leshan", True, False),
    ("agent1008", "agent1001", "leshan", False, False),
    ("agent1001", "", "leshan", False, False),          # a queued call belongs to no agent yet
    ("sup_leshan", "agent1001", "leshan", True, True),
    ("sup_chengdu", "agent1001", "leshan", False, False),
    ("command1", "agent1001", "leshan", True, True),
    ("command1", "", "", True, True),
])
def test_calls(user, call_agent, city, handle, supervise):
    p = USERS[user]
    assert access.may_handle_call(p, call_agent, city) is handle
    assert access.may_view_call(p, call_agent, city) is handle
    assert access.may_supervise_call(p, city) is supervise


def test_the_local_operator_is_the_command_center():
    assert access.SERVICE.all_cities and access.may_supervise_call(access.SERVICE, "panzhihua")


@pytest.mark.parametrize("number, masked", [("13800001111", "138****1111"), ("12345", "*****"),
                                            ("02887654321", "028****4321"), ("8123456", "8****56")])
def test_mask_number(number, masked):
    assert access.mask_number(number) == masked


def test_wall_displays_read_the_board_only():
    wall, hall = USERS["wall_province"], USERS["wall_leshan"]
    assert wall.role == hall.role == "wallboard" and wall.masked and not USERS["command1"].masked
    assert wall.all_cities and not hall.all_cities and access.sees_city(hall, "leshan")
    assert not access.sees_city(hall, "chengdu")
    for method, path in (("GET", "/api/wallboard"), ("GET", "/api/wallboard/leshan"), ("HEAD", "/api/wallboard"),
                         ("GET", "/api/me"), ("GET", "/ws"), ("POST", "/api/logout")):
        assert access.may_reach(wall, method, path), (method, path)
    for method, path in (("POST", "/api/wallboard"), ("GET", "/api/wallboard/leshan/calls"), ("GET", "/api/calls"),
                         ("GET", "/api/status"), ("GET", "/api/alerts"), ("POST", "/api/alerts/1/ack"),
                         ("POST", "/api/calls/1.1/listen"), ("GET", "/api/recordings/1.1"), ("GET", "/api/me/x"),
                         ("GET", "/api/wallboardx"), ("GET", "/api/reports")):
        assert not access.may_reach(wall, method, path), (method, path)
    # other roles: the handlers decide
    assert all(access.may_reach(USERS[u], "GET", "/api/calls") for u in ("agent1001", "sup_leshan", "command1"))
    assert "wall_province" not in CFG.sip_accounts()
