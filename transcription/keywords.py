"""Keyword alerts: which configured terms a piece of transcript contains. Pure functions over the
rules loaded (and checked) from config/keywords.yaml."""
from __future__ import annotations

import re
from dataclasses import dataclass

from core.config import KeywordsFile, Topic

_UNSPACED = re.compile(r"^[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\u0f00-\u0fff\s]+$")


@dataclass(frozen=True)
class Hit:
    topic: str
    term: str
    severity: str
    category: str


@dataclass(frozen=True)
class KeywordRules:
    topics: dict[str, Topic]
    # per language: (topic, term, compiled matcher)
    terms: dict[str, list[tuple[str, str, re.Pattern | None]]]

    def find(self, lang: str, text: str) -> list[Hit]:
        """One hit per topic (the first term found), in the order topics are configured."""
        if not text:
            return []
        squeezed = re.sub(r"\s+", "", text)
        lowered = text.lower()
        hits: dict[str, Hit] = {}
        for topic, term, rx in self.terms.get(lang, []):
            if topic in hits:
                continue
            found = rx.search(lowered) if rx is not None else (re.sub(r"\s+", "", term) in squeezed)
            if found:
                t = self.topics[topic]
                hits[topic] = Hit(topic, term, t.severity, t.category)
        return list(hits.values())

    def categories(self, hits: list[Hit]) -> list[str]:
        out: list[str] = []
        for h in hits:
            if h.category not in out:
                out.append(h.category)
        return out


def compile_rules(data: KeywordsFile) -> KeywordRules:
    terms: dict[str, list] = {}
    for lang, by_topic in data.terms.items():
        for topic, words in by_topic.items():
            for w in words:
                w = w.strip()
                if not w:
                    continue
                # Chinese and Tibetan: Vosk spaces words unpredictably, so compare without spaces;
                # spaced scripts: the term must start a word ("protest" also finds "protesters")
                rx = None if _UNSPACED.match(w) else re.compile(
                    r"(?<!\w)" + r"\s+".join(re.escape(p) for p in w.lower().split()), re.UNICODE)
                terms.setdefault(lang, []).append((topic, w, rx))
    return KeywordRules(data.topics, terms)
