"""Asterisk's own call records (cdr_csv Master.csv) as a second source of truth.

The caller channel's hangup handler writes the call's facts into the CDR userfield (``hl1|key=value|...``),
so a call that began and ended while the controller was down — or whose end it missed — is rebuilt
here instead of being lost or left "unobserved".
"""
from __future__ import annotations

import csv
import io
from core.paths import InstancePaths
from callcenter.tracker import CallTracker
from core.calls import CallState
from core.numbering import caller_id

MARK = "hl1|"
# cdr_csv column order with loguniqueid and loguserfield on
COL_SRC, COL_UNIQUEID, COL_USERFIELD = 1, 16, 17


def _f(v: str) -> float | None:
    try:
        return float(v) if v else None
    except ValueError:
        return None


def parse_row(row: list[str]) -> CallState | None:
    if len(row) <= COL_USERFIELD or not row[COL_USERFIELD].startswith(MARK):
        return None
    kv = dict(part.partition("=")[::2] for part in row[COL_USERFIELD][len(MARK):].split("|"))
    call = CallState(call_id=row[COL_UNIQUEID], caller_number=caller_id(row[COL_SRC]))
    call.dialed_number, call.city, call.area_code = kv.get("did", ""), kv.get("city", ""), kv.get("area", "")
    CallTracker._apply_path(call, kv.get("path", ""))  # language, city, service, green from the IVR path
    call.language = kv.get("lang", "") or call.language
    call.service = kv.get("svc", "") or call.service
    call.queue, call.overflow, call.agent = kv.get("queue", ""), kv.get("overflow", ""), kv.get("agent", "")
    call.green = kv.get("green", "") or call.green
    call.after_hours = kv.get("open") == "0"
    call.recording, call.voicemail = kv.get("rec", ""), kv.get("vm", "")
    call.started_at, call.queued_at = _f(kv.get("start", "")), _f(kv.get("queued", ""))
    call.answered_at, call.ended_at = _f(kv.get("answered", "")), _f(kv.get("end", ""))
    cause = kv.get("cause", "")
    call.hangup_cause = int(cause) if cause.isdigit() and cause != "0" else None
    call.status = "ended"
    call.outcome = ("answered" if call.answered_at else "voicemail" if call.voicemail or "voicemail" in row[3]
                    else "unknown_number" if not call.city else "abandoned" if call.queued_at else "ivr_hangup")
    call.hangup_cause_text = "rebuilt from Asterisk's CDR"
    return call


def read_calls(paths: InstancePaths, since: float, max_bytes: int = 8 << 20) -> dict[str, CallState]:
    """Hotline calls in Master.csv that ended after ``since`` (reads at most the last ``max_bytes``)."""
    f = paths.host(paths.log / "cdr-csv" / "Master.csv")
    if not f.exists():
        return {}
    with open(f, "rb") as fh:
        size = fh.seek(0, io.SEEK_END)
        fh.seek(max(0, size - max_bytes))
        data = fh.read().decode("utf-8", errors="replace")
    if size > max_bytes:
        data = data.split("\n", 1)[-1]  # drop the partial first line
    out = {}
    for row in csv.reader(io.StringIO(data)):
        call = parse_row(row)
        if call is not None and (call.ended_at or 0) >= since:
            out[call.call_id] = call
    return out

