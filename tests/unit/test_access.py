"""Who may do what (callcenter.access), table-driven, over the shipped config's users."""
from pathlib import Path

import pytest

from callcenter import access
from callcenter.config import load_config

ROOT = Path(__file__).resolve().parents[2]
CFG = load_config(ROOT)
USERS = access.principals(CFG)
HOME = {a.id: set(a.queues) for a in CFG.agents}


def test_every_agent_and_supervisor_has_a_login_interpreters_do_not():
    assert {a.id for a in CFG.agents} | {s.id for s in CFG.supervisors} == set(USERS)
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
