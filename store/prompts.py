"""IVR prompt recordings: each accepted version, who recorded it and when."""
from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from store.engine import Database, row_to_dict, utcnow
from store.models import PromptRecording


class PromptStore:
    def __init__(self, db: Database):
        self.session = db.session

    async def add(self, language: str, prompt_id: str, recorded_by: str, source: str, seconds: float) -> dict:
        """A new version (the previous one + 1); two supervisors accepting at once both get theirs."""
        for _ in range(5):
            try:
                async with self.session.begin() as s:
                    last = (await s.execute(select(func.max(PromptRecording.version)).where(
                        PromptRecording.language == language, PromptRecording.prompt_id == prompt_id))).scalar()
                    row = PromptRecording(language=language, prompt_id=prompt_id, version=(last or 0) + 1,
                                          recorded_by=recorded_by, source=source, seconds=round(seconds, 2),
                                          recorded_at=utcnow())
                    s.add(row)
                    await s.flush()
                    return row_to_dict(row)
            except IntegrityError:
                continue
        raise RuntimeError(f"could not number a new version of {language}/{prompt_id}")

    async def latest(self) -> dict[tuple[str, str], dict]:
        """(language, prompt id) -> its newest version."""
        newest = select(PromptRecording.language, PromptRecording.prompt_id,
                        func.max(PromptRecording.version).label("v")).group_by(
            PromptRecording.language, PromptRecording.prompt_id).subquery()
        q = select(PromptRecording).join(newest, (PromptRecording.language == newest.c.language)
                                         & (PromptRecording.prompt_id == newest.c.prompt_id)
                                         & (PromptRecording.version == newest.c.v))
        async with self.session() as s:
            return {(r.language, r.prompt_id): row_to_dict(r) for r in (await s.execute(q)).scalars().all()}

    async def history(self, language: str, prompt_id: str) -> list[dict]:
        q = select(PromptRecording).where(PromptRecording.language == language,
                                          PromptRecording.prompt_id == prompt_id).order_by(PromptRecording.version.desc())
        async with self.session() as s:
            return [row_to_dict(r) for r in (await s.execute(q)).scalars().all()]
