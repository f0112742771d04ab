"""Alerts for supervisors and the command center: keyword alerts (live and post-call transcription),
dead letters (interop delivery) and the wallboard's alarms, each acknowledged once."""
from __future__ import annotations

from sqlalchemy import and_, or_, select, update
from sqlalchemy.exc import IntegrityError

from store.engine import Database, row_to_dict, utcnow
from store.models import Alert


async def add_alert_in(s, **fields) -> dict | None:
    """Raise an alert inside the caller's transaction: one per call and topic (a live alert is not
    repeated by the post-call pass); None if it was raised before."""
    if fields.get("call_id"):
        if (await s.execute(select(Alert.id).where(Alert.call_id == fields["call_id"], Alert.kind == fields["kind"],
                                                    Alert.topic == fields.get("topic", "")))).first():
            return None
    a = Alert(created_at=utcnow(), acknowledged_by="", **{"agent": "", "term": "", "severity": "normal", "phase": "",
                                                          "speaker": "", "detail": "", "topic": "", **fields})
    s.add(a)
    await s.flush()
    return row_to_dict(a)


class AlertStore:
    def __init__(self, db: Database):
        self.session = db.session

    async def add_alert(self, **fields) -> dict | None:
        try:
            async with self.session.begin() as s:
                return await add_alert_in(s, **fields)
        except IntegrityError:   # the same alert raised concurrently (live and post-call)
            return None

    async def alerts(self, *, cities: set[str] | None = None, call_id: str | None = None, open_only: bool = False,
                     kind: str | None = None, current: bool = False, limit: int = 200) -> list[dict]:
        q = select(Alert).order_by(Alert.id.desc()).limit(limit)
        if current:   # what still needs someone: not acknowledged, or an alarm whose condition holds
            q = q.where(or_(Alert.acknowledged_at.is_(None), and_(Alert.kind == "alarm", Alert.cleared_at.is_(None))))
        if cities is not None:
            q = q.where(Alert.city.in_(cities))
        if call_id:
            q = q.where(Alert.call_id == call_id)
        if kind:
            q = q.where(Alert.kind == kind)
        if open_only:
            q = q.where(Alert.acknowledged_at.is_(None))
        async with self.session() as s:
            return [row_to_dict(a) for a in (await s.execute(q)).scalars().all()]

    async def alert(self, alert_id: int) -> dict | None:
        async with self.session() as s:
            a = await s.get(Alert, alert_id)
            return row_to_dict(a) if a else None

    async def acknowledge(self, alert_id: int, user_id: str) -> dict | None:
        """Once: a second acknowledgement returns None (409)."""
        async with self.session.begin() as s:
            res = await s.execute(update(Alert).where(Alert.id == alert_id, Alert.acknowledged_at.is_(None))
                                  .values(acknowledged_by=user_id, acknowledged_at=utcnow()))
            if res.rowcount != 1:
                return None
            return row_to_dict(await s.get(Alert, alert_id))

    # ---- wallboard alarms: one open alarm per city and condition, cleared when it no longer holds
    async def active_alarms(self) -> dict[tuple[str, str], dict]:
        async with self.session() as s:
            rows = (await s.execute(select(Alert).where(Alert.kind == "alarm", Alert.cleared_at.is_(None)))).scalars().all()
        return {(a.city, a.topic): row_to_dict(a) for a in rows}

    async def clear_alarm(self, alert_id: int) -> None:
        async with self.session.begin() as s:
            await s.execute(update(Alert).where(Alert.id == alert_id, Alert.cleared_at.is_(None)).values(cleared_at=utcnow()))
