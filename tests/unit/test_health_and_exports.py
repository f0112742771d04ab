"""Issue 17: /api/health says 503 and what is down when the controller has no AMI session (item 8;
the 200 of a healthy stack is checked by the integration tests that call it, e.g.
test_transcription.py), and the statistics exports are what an office in China opens in Excel or
WPS (item 9): CSV with a UTF-8 BOM, Chinese headers and city names, the same headers in XLSX,
English only on request. The real HTTP app on a migrated database (tests/helpers.http_app)."""
from __future__ import annotations

import csv
import io
import re
import zipfile
from datetime import datetime, timezone

import pytest

from core.calls import CallState
from store.calls import CallStore
from tests.helpers import PG_ADMIN_URL, http_app, postgres_database

pytestmark = pytest.mark.timeout(120)
BEARER = {"Authorization": "Bearer t"}      # http_app's service token


async def test_health_is_503_naming_ami_when_the_controller_has_no_ami_session(db_url, tmp_path):
    async with http_app(db_url, tmp_path) as c:        # no Asterisk: the AMI session never comes up
        r = await c.get("/api/health")
        assert r.status == 503
        body = await r.json()
        assert body["up"] is False and body["down"] == ["ami"] and body["database"] is True
        assert "ami" in body["error"]


async def test_health_is_503_naming_the_database_when_it_is_gone(tmp_path):
    import psycopg
    with postgres_database() as url:
        async with http_app(url, tmp_path) as c:
            # the database disappears under the running app (connections cut): a real outage
            with psycopg.connect(PG_ADMIN_URL, autocommit=True, connect_timeout=5) as admin:
                admin.execute(f'DROP DATABASE "{url.rsplit("/", 1)[1]}" WITH (FORCE)')
            r = await c.get("/api/health")
            assert r.status == 503
            body = await r.json()
            assert body["database"] is False and set(body["down"]) == {"ami", "database"}
            assert body["error"] == "down: ami, database"      # no connection details to anonymous callers


async def test_statistics_exports_speak_chinese_unless_asked_for_english(db_url, tmp_path):
    day = datetime(2026, 11, 25, 2, tzinfo=timezone.utc)
    async with http_app(db_url, tmp_path) as c:
        await CallStore(c.ctl.db).save_call(CallState(
            call_id="9.1", city="leshan", caller_number="13800000001", status="ended", outcome="answered",
            agent="agent1001", started_at=day.timestamp(), queued_at=day.timestamp() + 5,
            answered_at=day.timestamp() + 10))
        q = "/api/stats?period=day&from=2026-11-25&to=2026-11-25"

        r = await c.get(q + "&format=csv", headers=BEARER)
        assert r.status == 200 and r.headers["Content-Type"].startswith("text/csv")
        raw = await r.read()
        assert raw.startswith(b"\xef\xbb\xbf")                  # the BOM Excel needs to read UTF-8
        rows = list(csv.reader(io.StringIO(raw.decode("utf-8-sig"))))
        assert rows[0][:4] == ["统计期间", "城市", "来电量", "接通量"]
        assert "咨询类别:劳动与欠薪" in rows[0] and "咨询类别:未分类" in rows[0]
        cities = {row[1]: row for row in rows[1:]}
        assert set(cities) == {"乐山市", "四川省12348指挥中心"}
        assert cities["乐山市"][2:4] == ["1", "1"]

        r = await c.get(q + "&format=csv&lang=en", headers=BEARER)
        rows = list(csv.reader(io.StringIO((await r.read()).decode("utf-8-sig"))))
        assert rows[0][:4] == ["period", "city", "calls", "answered"]
        assert {row[1] for row in rows[1:]} == {"leshan", "province"}

        r = await c.get(q + "&format=xlsx", headers=BEARER)
        assert r.status == 200
        book = zipfile.ZipFile(io.BytesIO(await r.read()))
        strings = re.findall(r"<t[^>]*>([^<]*)</t>", book.read("xl/sharedStrings.xml").decode())
        assert strings[:4] == ["统计期间", "城市", "来电量", "接通量"] and "乐山市" in strings

        r = await c.get(q + "&format=csv&lang=fr", headers=BEARER)
        assert r.status == 400
