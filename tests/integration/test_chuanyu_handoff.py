"""川渝通办 over real HTTP on loopback: a legal-aid matter that arose in Chongqing is pre-screened (a
Chongqing place used to be a 400), the answer names Chongqing's center and the partner that takes the
handoff, and the ticket goes to Chongqing 12348 through the same signed interop outbox as 12345 —
delivered by the real outbox worker to the partner simulator (speaking the protocol, signing as
`cq12348`), whose status callbacks come back to the real API. No Asterisk needed."""
from __future__ import annotations

import asyncio
import time

from aiohttp import web

from core.calls import CallState
from interop.delivery import Deliverer
from simulators.partner_hotline import Simulator
from store.secrets import Secrets
from tests.helpers import free_port, http_app

AUTH = {"Authorization": "Bearer t"}
SECRET = "chuanyu-test-secret"


async def _until(check, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        got = await check()
        if got:
            return got
        await asyncio.sleep(0.1)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


async def test_a_chongqing_matter_is_handed_to_chongqing_12348(db_url, tmp_path):
    port = free_port()
    overrides = {"interop": {"poll_seconds": 0.1, "backoff_seconds": 0.1, "backoff_max_seconds": 0.5,
                             "endpoints": {"cq12348": {"default": f"http://127.0.0.1:{port}/api/v1"}}}}
    async with http_app(db_url, tmp_path, overrides, partner_secrets={"cq12348": SECRET}) as client:
        ctl = client.ctl
        cfg = ctl.cfg
        # 1. the pre-screen: a wage claim from a Leshan caller who worked in Yubei, Chongqing
        r = await client.post("/api/legal-aid/prescreen", headers=AUTH, json={
            "city": "leshan", "matter": "wage_arrears", "groups": ["migrant_worker"],
            "places": {"contract_performance": "500112"}})
        assert r.status == 200, await r.text()
        answer = await r.json()
        assert answer["eligibility"] == "likely" and answer["jurisdiction"]["cities"] == ["500112"]
        chongqing = answer["jurisdiction"]["offices"][-1]
        assert (chongqing["code"], chongqing["province"], chongqing["partner"]) == ("500000", "chongqing", "cq12348")
        assert any(n["rule"] == "sc_chuanyu" and n["verified"] is False for n in answer["notes"])

        # 2. Chongqing 12348 (the simulator) on a real socket, and the outbox worker
        sim = Simulator(SECRET, cfg.system.node.name, str(client.make_url("")).rstrip("/"), "control",
                        own_key="cq12348", callback_delay=0.05)
        runner = web.AppRunner(sim.app(), access_log=None)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", port).start()
        keys = Secrets(ami_user="u", ami_secret="s", agent_passwords={}, service_token="t", privacy_key="k",
                       bus_key="k", partner_secrets={"cq12348": SECRET})
        worker, stop = Deliverer(cfg, keys), asyncio.Event()
        task = asyncio.create_task(worker.run(stop))
        try:
            call = CallState(call_id="cq-1", city="leshan", agent="agent1001", caller_number="13900001111",
                             language="zh")
            await ctl.tickets.ensure_for_call(call, "call", 72)
            tid = (await ctl.tickets.for_call("cq-1"))["id"]
            r = await client.patch(f"/api/tickets/{tid}", headers=AUTH,
                                   json={"category": "labour_wages", "summary": "在重庆渝北务工被欠薪，申请川渝通办"})
            assert r.status == 200, await r.text()
            r = await client.post(f"/api/tickets/{tid}/handoff", headers=AUTH,
                                  json={"partner": chongqing["partner"], "consent": False})
            assert r.status == 200, await r.text()
            assert (await r.json())["partner"] == "cq12348"

            async def settled():
                r = await client.get(f"/api/tickets/{tid}/handoffs", headers=AUTH)
                hs = await r.json()
                return hs if hs and hs[0]["status"] == "resolved" else None
            (h,) = await _until(settled, 30, "Chongqing's ticket and its status callbacks")
            assert h["partner_ticket_id"] and h["partner"] == "cq12348"
            (doc,) = [t["doc"] for t in sim.tickets.values()]
            # the same protocol and fields as 12345; without consent, no number leaves 12348
            assert doc["region"] == "leshan" and "重庆" in doc["content"] and "citizen_phone" not in doc
            assert sim.rejected == []
            ticket = await (await client.get(f"/api/tickets/{tid}", headers=AUTH)).json()
            assert (ticket["status"], ticket["outcome"]) == ("referred", "referred_cq12348")
        finally:
            stop.set()
            await asyncio.wait_for(task, 15)
            await runner.cleanup()
