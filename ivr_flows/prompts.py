"""IVR prompts: texts per language from the flow file, audio synthesised or recorded.

Mandarin and English are synthesised with espeak-ng + sox (cached by text and voice). Languages
without an open TTS (Tibetan) use the operator's recordings from ``ivr_flows/recordings/<lang>/``;
until one is supplied a short placeholder chime is installed and ``hotline prompts check`` lists it.
"""
from __future__ import annotations

import hashlib
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from core.config import HotlineConfig
from core.routing import cities_by_area_code, city_choices

RECORDINGS = Path(__file__).resolve().parent / "recordings"
MAX_AHEAD = 20     # "20 callers ahead" is said for 20 or more
MAX_MINUTES = 30   # likewise for the expected wait
TEMPLATES = {"city_option", "position", "wait_minutes"}
# Telephone audio: 8 kHz, mono, 16-bit signed PCM WAV (Asterisk's format_wav).
SOX_OUT = ["-r", "8000", "-c", "1", "-b", "16", "-e", "signed-integer"]
_ZH_DIGITS = dict(zip("0123456789", "零一二三四五六七八九"))


@dataclass(frozen=True)
class PromptStatus:
    lang: str
    prompt_id: str
    text: str
    source: str  # "tts", "recording" or "placeholder"
    path: Path


def prompt_texts(cfg: HotlineConfig) -> dict[tuple[str, str], str]:
    """Every (language, prompt id) the dialplan plays, with its text."""
    ivr = cfg.ivr
    texts: dict[tuple[str, str], str] = {}
    for pid, by_lang in ivr.prompts.items():
        if pid in TEMPLATES:
            continue  # templates, expanded below
        for lang in ivr.languages:
            texts[(lang.code, pid)] = by_lang[lang.code]
    for lang in ivr.languages:
        for n in range(1, MAX_AHEAD + 1):
            texts[(lang.code, f"position_{n}")] = ivr.prompts["position"][lang.code].format(n=n)
        for n in range(1, MAX_MINUTES + 1):
            texts[(lang.code, f"wait_{n}")] = ivr.prompts["wait_minutes"][lang.code].format(n=n)
    for area, group in cities_by_area_code(cfg.cities).items():
        if len(group) < 2:
            continue
        for lang in ivr.languages:
            template = ivr.prompts["city_option"][lang.code]
            parts = [template.format(city=getattr(cfg.city(cid).names, lang.code, None) or cfg.city(cid).names.en,
                                     digit=digit) for digit, cid in city_choices(group)]
            texts[(lang.code, f"city_{area}")] = " ".join(parts)
    return texts


def spoken_form(text: str, lang: str) -> str:
    """Service numbers are read digit by digit (12348 -> 一二三四八), as callers dial them."""
    def spell(m: re.Match) -> str:
        digits = m.group(0)
        return "".join(_ZH_DIGITS[d] for d in digits) if lang == "zh" else " ".join(digits)
    return re.sub(r"\d{3,}", spell, text)


def _run(cmd: list[str]) -> None:
    res = subprocess.run(cmd, capture_output=True, text=True)
    if res.returncode != 0:
        raise RuntimeError(f"{cmd[0]} failed ({res.returncode}): {res.stderr.strip()[:500]}")


def _placeholder(path: Path) -> None:
    # two soft tones: audible, clearly not speech
    _run(["sox", "-n", *SOX_OUT, str(path), "synth", "0.25", "sine", "660", "vol", "0.3", ":",
          "synth", "0.25", "sine", "880", "vol", "0.3", ":", "synth", "0.3", "sine", "0", "vol", "0"])


def build_prompts(cfg: HotlineConfig, out_dir: Path, cache_dir: Path,
                  progress: Callable[[int, int], None] | None = None) -> list[PromptStatus]:
    """Write <out_dir>/<lang>/<prompt>.wav for every prompt; return where each came from.
    ``progress(done, total)`` after each prompt (a first synthesis takes a minute)."""
    cache_dir.mkdir(parents=True, exist_ok=True)
    statuses = []
    texts = sorted(prompt_texts(cfg).items())
    for (lang_code, pid), text in texts:
        if progress:
            progress(len(statuses), len(texts))
        lang = cfg.ivr.language(lang_code)
        dest = out_dir / lang_code / f"{pid}.wav"
        dest.parent.mkdir(parents=True, exist_ok=True)
        recorded = RECORDINGS / lang_code / f"{pid}.wav"
        if recorded.exists():
            _run(["sox", str(recorded), *SOX_OUT, str(dest)])
            source = "recording"
        elif lang.tts is not None:
            spoken = spoken_form(text, lang_code)
            key = hashlib.sha256(f"{lang.tts.voice}|{lang.tts.speed}|{spoken}".encode()).hexdigest()[:20]
            cached = cache_dir / f"{key}.wav"
            if not cached.exists():
                raw = cache_dir / f"{key}.raw.wav"
                _run(["espeak-ng", "-v", lang.tts.voice, "-s", str(lang.tts.speed), "-w", str(raw), spoken])
                tmp = cache_dir / f"{key}.tmp.wav"
                _run(["sox", str(raw), *SOX_OUT, str(tmp), "gain", "-n", "-3"])
                tmp.replace(cached)
                raw.unlink(missing_ok=True)
            shutil.copyfile(cached, dest)
            source = "tts"
        else:
            _placeholder(dest)
            source = "placeholder"
        statuses.append(PromptStatus(lang_code, pid, text, source, dest))
    if progress:
        progress(len(statuses), len(texts))
    return statuses


def announces_waits(cfg: HotlineConfig, lang_code: str) -> bool:
    """Position/wait announcements only where every such prompt is real speech, never a chime."""
    if cfg.ivr.language(lang_code).tts is not None:
        return True
    ids = ["position_next"] + [f"position_{n}" for n in range(1, MAX_AHEAD + 1)] + \
          [f"wait_{n}" for n in range(1, MAX_MINUTES + 1)]
    return all((RECORDINGS / lang_code / f"{pid}.wav").exists() for pid in ids)


def missing_recordings(cfg: HotlineConfig) -> list[PromptStatus]:
    """Prompts of languages without TTS that have no operator recording yet."""
    out = []
    for (lang_code, pid), text in sorted(prompt_texts(cfg).items()):
        if cfg.ivr.language(lang_code).tts is None:
            rec = RECORDINGS / lang_code / f"{pid}.wav"
            if not rec.exists():
                out.append(PromptStatus(lang_code, pid, text, "placeholder", rec))
    return out
