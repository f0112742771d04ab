import shutil
from pathlib import Path

import pytest

from tests.helpers import CHROMIUM, Stack, fresh, postgres_database, tts_wav


# Under pytest-xdist (`make test`: --dist loadfile, a module's tests on one worker) modules are handed out
# in collection order, so the longest go first and the short ones fill in at the end (longest processing
# time first). Measured with --durations=0 on 4 workers; a module not listed goes after these.
LONGEST_FIRST = [
    "integration/test_browser_phone.py",   # ~390 s alone, its own stack and Chromium with fake media
    "integration/test_desk.py",            # ~350 s, its own stack
    "integration/test_vulnerable.py",      # ~315 s, its own stack, sipp as 110
    "integration/test_routing.py",         # ~350 s, its own stack
    "integration/test_call_flow.py",       # ~240 s
    "integration/test_faults.py",          # ~170 s, its own stack, PostgreSQL and Redis
    "integration/test_prompt_recording.py",  # ~180 s, its own stack
    "integration/test_cluster.py",         # ~120 s without the slow failover test: Kamailio and two nodes
    "integration/test_nodes.py",           # two nodes sharing PostgreSQL and Redis
    "integration/test_sip_tls.py",         # ~210 s alone, its own stack (phones and trunk on TLS)
    "integration/test_api_fuzz.py",        # ~160 s
    "integration/test_resilience.py",      # ~140 s
    "integration/test_transcription.py",   # ~120 s, its own stack and transcriber
    "integration/test_federation.py",      # ~100 s, three stacks
    "integration/test_interop.py",
    "integration/test_wallboard.py",
    "integration/test_callback.py",
    "integration/test_backup.py",          # ~120 s, its own stack
    "integration/test_sip_scanner.py",
    "integration/test_databases_and_bus.py",
    "integration/test_interpreter.py",
    "integration/test_sip_phones.py",
]


def _module_rank(item) -> int:
    path = item.nodeid.split("::", 1)[0]
    return next((i for i, m in enumerate(LONGEST_FIRST) if path.endswith(m)), len(LONGEST_FIRST))


def pytest_collection_modifyitems(config, items):
    for item in items:
        if "integration" in str(item.fspath):
            item.add_marker(pytest.mark.asterisk)
    if hasattr(config, "workerinput"):      # an xdist worker: every worker sorts the same way
        items.sort(key=_module_rank)        # stable: a module's own order is kept


@pytest.fixture(scope="session")
def audio(tmp_path_factory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("audio")
    return {
        "caller": tts_wav("你好，我是农民工，老板拖欠了我三个月的工资，我想咨询一下应该怎么办。", "cmn", d / "caller.wav"),
        "agent": tts_wav("您好，这里是十二三四八法律服务热线，请问有什么可以帮您。", "cmn", d / "agent.wav"),
    }


@pytest.fixture(scope="session")
def stack(tmp_path_factory):
    if shutil.which("chroot") is None or shutil.which("espeak-ng") is None:
        pytest.fail("the real-stack tests need chroot and espeak-ng (run `make test`, which installs them)")
    s = Stack(tmp_path_factory.mktemp("stack"))
    s.start()
    yield s
    s.close()


@pytest.fixture
def clean_stack(stack):
    """Each test starts with every agent logged out and no stray softphones."""
    with fresh(stack):
        yield stack


@pytest.fixture(scope="module")
def browser():
    """Headless Debian chromium driven by playwright (one per test module)."""
    playwright = pytest.importorskip("playwright.sync_api", reason="playwright is in the test extras")
    if not Path(CHROMIUM).exists():
        pytest.fail("Debian chromium is not installed (make test installs it)")
    with playwright.sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=CHROMIUM, headless=True,
                               args=["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"])
        yield b
        b.close()


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request, tmp_path):
    """Every test that touches the database runs on both: SQLite (default) and PostgreSQL."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path}/t.db"
    else:
        with postgres_database() as url:
            yield url
