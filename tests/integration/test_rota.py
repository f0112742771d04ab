"""Queue membership follows the shift rota (the provincial pool is rostered 24/7)."""
import time


def test_rota_logs_the_night_pool_in(clean_stack):
    s = clean_stack
    try:
        s.restart_controller_with(rotas_enabled=True)
        deadline = time.monotonic() + 15
        state = None
        while time.monotonic() < deadline:
            state = {a["id"]: a for a in s.api("/api/agents")}["agent1006"]
            # the rota's login is one QueueAdd per queue: ready in the first queue before it is in them all
            if state["state"] == "ready" and "province" in state["queues"]:
                break
            time.sleep(0.3)
        assert state["state"] == "ready" and "province" in state["queues"], state
        assert "PJSIP/agent1006" in s.asterisk.rx("queue show province")
    finally:
        s.restart_controller_with(rotas_enabled=False)
        s.logout_all()
