"""Words for full-text search. Chinese has no spaces, so runs of Han characters are segmented with
jieba (search mode: "拖欠工资" also yields "拖欠" and "工资"); Tibetan is split into syllables at the
tsheg; other scripts (English, Korean, pinyin, numbers) into words. The same function indexes
and parses queries, so a query always matches the way the text was indexed."""
from __future__ import annotations

import re
from functools import lru_cache

_TOKEN = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]+|[\u0f40-\u0fbc]+|\w+", re.UNICODE)
_HAN = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]")


@lru_cache(maxsize=1)
def _jieba():
    import logging

    import jieba
    jieba.setLogLevel(logging.WARNING)
    jieba.initialize()
    return jieba


def tokens(text: str) -> list[str]:
    out: list[str] = []
    for m in _TOKEN.finditer(text or ""):
        run = m.group(0)
        if _HAN.match(run):
            if len(run) == 1:
                out.append(run)
            else:
                out.extend(t for t in _jieba().cut_for_search(run) if t.strip())
        else:
            out.append(run.lower())
    return out


def index_text(text: str) -> str:
    """What goes into the search index: tokens separated by spaces."""
    return " ".join(tokens(text))


def query_tokens(query: str) -> list[str]:
    """A query's words, deduplicated, in order; all must be found. A long Chinese word is replaced
    by its sub-words ("拖欠工资" -> "拖欠", "工资"), so it also finds "拖欠了三个月工资"."""
    seen: list[str] = []
    for m in _TOKEN.finditer(query or ""):
        run = m.group(0)
        if _HAN.match(run) and len(run) > 1:
            words = []
            for w in _jieba().cut(run):
                sub = [t for t in _jieba().cut_for_search(w) if t != w] if len(w) > 2 else []
                words.extend(sub or [w])
        else:
            words = [run.lower()]
        for w in words:
            w = w.strip()
            if w and w not in seen:
                seen.append(w)
    return seen
