"""asterisk.cpus on a real stack: every thread of Asterisk on its cores, the controller's off them.

At a busy peak on shared cores the one Asterisk thread that writes the AMI events waited seconds for a
core (docs/performance.md, "Who holds the late events"); Asterisk with cores of its own is the remedy."""
import os
from pathlib import Path

import pytest

from tests.helpers import Stack


def affinities(pid: int) -> set[frozenset[int]]:
    out = set()
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            out.add(frozenset(os.sched_getaffinity(int(task.name))))
        except (ProcessLookupError, FileNotFoundError):
            pass        # a thread that ended meanwhile
    return out


@pytest.fixture(scope="module")
def pinned_stack(tmp_path_factory):
    cores = os.sched_getaffinity(0)
    if len(cores) < 2:
        pytest.skip("one core here: Asterisk cannot have one of its own")
    s = Stack(tmp_path_factory.mktemp("cores"))
    s.overrides["asterisk"]["cpus"] = [min(cores)]
    s.reconfigure()
    s.start()
    yield s
    s.close()


def test_asterisk_and_the_controller_on_separate_cores(pinned_stack):
    s = pinned_stack
    mine = frozenset({min(os.sched_getaffinity(0))})
    rest = frozenset(os.sched_getaffinity(0)) - mine
    assert affinities(s.asterisk.pid()) == {mine}
    assert affinities(s.controller.pid) == {rest}
    # and the pinned Asterisk works: the controller is connected to it and it answers the console
    assert "System uptime" in s.asterisk.rx("core show uptime")
    st = s.wait_controller()
    assert st["asterisk"]["ami_connected"] and st["controller"]["resynced"], st
