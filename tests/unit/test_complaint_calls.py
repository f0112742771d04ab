"""The IVR complaint option's record (store/complaints.py ensure_for_call) on SQLite and PostgreSQL: one
complaint per call however often the record writer (a single task) comes back to it."""
from __future__ import annotations

from pathlib import Path

from store.complaints import ComplaintStore
from store.engine import Database, migrate

ROOT = Path(__file__).resolve().parents[2]
FIELDS = {"kind": "service", "source": "phone", "city": "leshan", "complainant_number": "13900001234",
          "language": "zh", "description": "来电投诉（IVR 投诉选项）"}


async def test_one_complaint_per_call(db_url):
    migrate(db_url, ROOT)
    db = Database(db_url, ROOT)
    store = ComplaintStore(db)
    try:
        first, created = await store.ensure_for_call("1700000000.1", FIELDS, 7)
        assert created and first["received_by"] == "ivr" and first["status"] == "received"
        again, created = await store.ensure_for_call("1700000000.1", FIELDS, 7)
        assert not created and again["id"] == first["id"]
        other, created = await store.ensure_for_call("1700000000.2", FIELDS, 7)
        assert created and other["id"] != first["id"] and other["ref"] != first["ref"]
        rows = await store.search(city="leshan")
        assert sorted(r["call_id"] for r in rows) == ["1700000000.1", "1700000000.2"]
    finally:
        await db.close()
