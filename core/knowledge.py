"""The legal knowledge base's rules (法律知识库): what an entry holds, when it is in force, which
moves between review states are allowed, and the seed file config/knowledge.yaml. Pure: the
store (store/knowledge.py) keeps the entries, the API (dashboard/routes/knowledge.py) serves them."""
from __future__ import annotations

from datetime import date
from pathlib import Path

from pydantic import Field, field_validator, model_validator

from core.config.base import ConfigError, Strict, read_yaml, validate

STATUSES = ("draft", "published", "expired")
# a summary goes to the caller as one text: 300 characters is five UCS-2 parts at most
SUMMARY_MAX = 300
SLUG = r"^[a-z0-9][a-z0-9_\-]{0,63}$"


class LawRef(Strict):
    law: str = Field(min_length=2, max_length=60, description="the law's short name, e.g. 劳动合同法")
    article: str = Field(min_length=1, max_length=40, description="e.g. 第八十二条")


class EntryFields(Strict):
    """One version's text. Dates are YYYY-MM-DD; an entry with no end date stays in force."""
    title: str = Field(min_length=2, max_length=200)
    question: str = Field(min_length=2, max_length=2000)
    answer: str = Field(min_length=2, max_length=8000)
    summary: str = Field(min_length=2, max_length=SUMMARY_MAX, description="the text sent to the caller by SMS")
    laws: list[LawRef] = Field(min_length=1, max_length=20)
    keywords: list[str] = Field(default_factory=list, max_length=30)
    effective_from: date
    effective_to: date | None = None
    needs_lawyer_review: bool = True

    @field_validator("keywords")
    @classmethod
    def _words(cls, v: list[str]) -> list[str]:
        for w in v:
            if not w.strip() or len(w) > 30:
                raise ValueError(f"keyword {w!r}: 1 to 30 characters")
        return v

    @model_validator(mode="after")
    def _dates(self):
        if self.effective_to is not None and self.effective_to <= self.effective_from:
            raise ValueError("effective_to must be after effective_from")
        return self


class SeedEntry(EntryFields):
    slug: str = Field(pattern=SLUG)
    category: str


class KnowledgeFile(Strict):
    """config/knowledge.yaml: which ticket categories each IVR service suggests from, the SMS text
    around a summary, and the starter entries."""
    services: dict[str, list[str]] = Field(default_factory=dict)
    sms_text: dict[str, str] = Field(default_factory=lambda: {"zh": "【12348】{summary}"})
    entries: list[SeedEntry] = Field(default_factory=list)

    @model_validator(mode="after")
    def _unique(self):
        seen: set[str] = set()
        for e in self.entries:
            if e.slug in seen:
                raise ValueError(f"entries: slug {e.slug!r} is used twice")
            seen.add(e.slug)
        if "zh" not in self.sms_text:
            raise ValueError("sms_text: the zh text is required (the fallback for every language)")
        for lang, t in self.sms_text.items():
            if "{summary}" not in t:
                raise ValueError(f"sms_text.{lang}: must contain {{summary}}")
        return self


def load_knowledge(config_dir: Path, categories: set[str], services: set[str] | None = None) -> KnowledgeFile:
    """The seed file, cross-checked against the ticket categories (and the IVR's services); an
    absent file is an empty base."""
    path = config_dir / "knowledge.yaml"
    if not path.exists():
        return KnowledgeFile()
    kf: KnowledgeFile = validate(KnowledgeFile, read_yaml(path) or {}, path)
    for i, e in enumerate(kf.entries):
        if e.category not in categories:
            raise ConfigError(f"{path}: entries.{i}.category: unknown ticket category {e.category!r} "
                              f"(tickets.yaml has: {', '.join(sorted(categories))})")
    for svc, cats in kf.services.items():
        if services is not None and svc not in services:
            raise ConfigError(f"{path}: services.{svc}: not a service of the IVR ({', '.join(sorted(services))})")
        for c in cats:
            if c not in categories:
                raise ConfigError(f"{path}: services.{svc}: unknown ticket category {c!r}")
    return kf


def in_force(effective_from: str, effective_to: str, today: date) -> bool:
    """From its first day up to (not including) its end day."""
    day = today.isoformat()
    return effective_from <= day and (not effective_to or day < effective_to)


def check_move(status: str, to: str) -> str:
    """'' when an entry may move from ``status`` to ``to``, else why not. A draft version may be
    published over a published one (the old version is superseded); an expired entry comes back
    only by publishing a version."""
    allowed = {"publish": ("draft", "published", "expired"), "expire": ("published",)}
    if to not in allowed:
        return f"unknown action {to!r} (publish, expire)"
    if status not in allowed[to]:
        return f"a {status} entry cannot be {'published' if to == 'publish' else 'expired'}"
    return ""


def sms_body(templates: dict[str, str], language: str, summary: str) -> str:
    return (templates.get(language) or templates["zh"]).format(summary=summary)


def service_of(ivr_path: str) -> str:
    """The service chosen in the IVR, from its path ("lang=zh/svc=consultation")."""
    for step in (ivr_path or "").split("/"):
        key, _, value = step.partition("=")
        if key == "svc":
            return value
    return ""


# words of everyday speech that say nothing about the matter (a live transcript is full of them)
_STOP = frozenset("""怎么办 怎么 什么 可以 我们 你们 他们 她们 这个 那个 就是 还是 没有 知道 现在 时候 一个 不是 因为
所以 如果 但是 已经 自己 还想 想要 请问 你好 您好 谢谢 然后 这样 那样 一下 有没有 是不是 能不能 可不可以 应该 需要
问题 事情 情况 东西 说话 电话 喂 嗯 啊 哦 呢 吧 了 的 是 我 你 他 她 它""".split())


def telling_words(words: list[str]) -> list[str]:
    """The words of a transcript worth suggesting from: no single Chinese characters, no filler."""
    out = []
    for w in words:
        if w in _STOP or (len(w) < 2) or (w.isascii() and len(w) < 3):
            continue
        out.append(w)
    return out
