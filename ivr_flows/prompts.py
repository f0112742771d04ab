"""IVR prompts: texts per language from the flow file, audio synthesised or recorded.

Mandarin and English are synthesised with espeak-ng + sox (cached by text and voice). Languages
without an open TTS (Tibetan, Yi) use recordings: made by a supervisor by phone or uploaded on the
prompts page (kept in ``<state_dir>/prompt-recordings/<lang>/``), or shipped in
``ivr_flows/recordings/<lang>/``. Until one exists a short placeholder chime is installed and
``hotline prompts check`` lists it. A recording replaces the prompt file in the instance's sound
directory at once: Asterisk opens the file for each playback, so the next caller hears it.
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


# Prompts for staff recording prompts by phone (Mandarin, synthesised; under <sounds>/staff/)
STAFF_PROMPTS = {
    "rec_welcome": "录制提示音。",
    "rec_language": "请选择语言，按来电语言菜单中的同一个数字键。",
    "rec_number": "请输入提示音编号，以井号键结束。",
    "rec_unknown": "没有这个编号，请重新输入。",
    "rec_current": "提示音编号",
    "rec_now": "当前版本是：",
    "rec_start": "请在嘀声后录音，录完按井号键。",
    "rec_review": "您的录音是：",
    "rec_choice": "满意请按1，重新录音请按2。",
    "rec_saved": "已保存，立即生效。再见。",
    "rec_failed": "保存失败，请稍后再试。",
    "rec_refused": "您没有录制提示音的权限。再见。",
    "rec_pin": "请输入录音密码，以井号键结束。",
    **{f"digit_{d}": w for d, w in _ZH_DIGITS.items()},
}
# a prompt text still to be written in its language (the Mandarin original follows), e.g. Yi's
TEXT_PLACEHOLDER = "【待译】"
UPLOAD_MAX_SECONDS = 120   # a prompt longer than two minutes is a mistake, not a prompt


def recorded_dir(cfg: HotlineConfig) -> Path:
    """Where accepted recordings (by phone or upload) are kept: survives reinstalling the sounds."""
    return cfg.state_dir / "prompt-recordings"


def recording_for(cfg: HotlineConfig, lang: str, pid: str) -> Path | None:
    """The recording that replaces synthesis or the chime: the staff's newest, else the shipped one."""
    for base in (recorded_dir(cfg), RECORDINGS):
        path = base / lang / f"{pid}.wav"
        if path.exists():
            return path
    return None


def prompt_numbers(cfg: HotlineConfig) -> dict[str, int]:
    """Prompt id -> the number staff key in to record it: the flow file's order with templates
    expanded in place, so a prompt appended to the file never renumbers the others."""
    numbers: dict[str, int] = {}
    areas = [a for a, group in cities_by_area_code(cfg.cities).items() if len(group) > 1]
    for pid in cfg.ivr.prompts:
        if pid == "position":
            ids = [f"position_{n}" for n in range(1, MAX_AHEAD + 1)]
        elif pid == "wait_minutes":
            ids = [f"wait_{n}" for n in range(1, MAX_MINUTES + 1)]
        elif pid == "city_option":
            ids = [f"city_{a}" for a in areas]
        else:
            ids = [pid]
        for i in ids:
            numbers[i] = len(numbers) + 1
    return numbers


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
        recorded = recording_for(cfg, lang_code, pid)
        if recorded is not None:
            _run(["sox", str(recorded), *SOX_OUT, str(dest)])
            source = "recording"
        elif lang.tts is not None:
            shutil.copyfile(_synthesise(text, lang.tts.voice, lang.tts.speed, cache_dir, lang_code), dest)
            source = "tts"
        else:
            _placeholder(dest)
            source = "placeholder"
        statuses.append(PromptStatus(lang_code, pid, text, source, dest))
    if progress:
        progress(len(statuses), len(texts))
    build_staff_prompts(cfg, out_dir / "staff", cache_dir)
    return statuses


def _synthesise(text: str, voice: str, speed: int, cache_dir: Path, lang_code: str) -> Path:
    spoken = spoken_form(text, lang_code)
    key = hashlib.sha256(f"{voice}|{speed}|{spoken}".encode()).hexdigest()[:20]
    cached = cache_dir / f"{key}.wav"
    if not cached.exists():
        raw = cache_dir / f"{key}.raw.wav"
        _run(["espeak-ng", "-v", voice, "-s", str(speed), "-w", str(raw), spoken])
        tmp = cache_dir / f"{key}.tmp.wav"
        _run(["sox", str(raw), *SOX_OUT, str(tmp), "gain", "-n", "-3"])
        tmp.replace(cached)
        raw.unlink(missing_ok=True)
    return cached


def build_staff_prompts(cfg: HotlineConfig, out_dir: Path, cache_dir: Path) -> None:
    """The recording-by-phone menu's own prompts, in the default language's voice (Mandarin)."""
    tts = cfg.ivr.language(cfg.ivr.default_language).tts
    out_dir.mkdir(parents=True, exist_ok=True)
    cache_dir.mkdir(parents=True, exist_ok=True)
    for sid, text in STAFF_PROMPTS.items():
        dest = out_dir / f"{sid}.wav"
        if tts is None:
            _placeholder(dest)
        else:
            shutil.copyfile(_synthesise(text, tts.voice, tts.speed, cache_dir, "zh"), dest)


class BadRecording(ValueError):
    """Audio that cannot become a prompt (not audio, empty, too long); the message says why."""


def audio_seconds(path: Path) -> float:
    res = subprocess.run(["soxi", "-D", str(path)], capture_output=True, text=True)
    if res.returncode != 0:
        raise BadRecording("not an audio file sox can read")
    try:
        return float(res.stdout.strip())
    except ValueError:
        raise BadRecording("not an audio file sox can read") from None


def install_recording(cfg: HotlineConfig, sounds_dir: Path, lang: str, pid: str, src: Path) -> float:
    """Convert ``src`` to telephone audio and make it the prompt: kept under recorded_dir (reinstalls
    keep it) and swapped into ``sounds_dir`` atomically (the next playback opens the new file).
    Returns its length in seconds; BadRecording if it is not usable audio."""
    if (lang, pid) not in prompt_texts(cfg):
        raise BadRecording(f"no prompt {pid!r} in language {lang!r}")
    seconds = audio_seconds(src)
    if seconds <= 0.2:
        raise BadRecording("the recording is empty")
    if seconds > UPLOAD_MAX_SECONDS:
        raise BadRecording(f"the recording is {seconds:.0f} s long; at most {UPLOAD_MAX_SECONDS} s")
    keep = recorded_dir(cfg) / lang / f"{pid}.wav"
    keep.parent.mkdir(parents=True, exist_ok=True)
    tmp = keep.with_suffix(".tmp.wav")
    try:
        _run(["sox", str(src), *SOX_OUT, str(tmp)])
    except RuntimeError as e:
        tmp.unlink(missing_ok=True)
        raise BadRecording(f"sox could not convert it: {e}") from e
    tmp.replace(keep)
    live = sounds_dir / lang / f"{pid}.wav"
    live.parent.mkdir(parents=True, exist_ok=True)
    staged = live.with_name(f".{pid}.new.wav")
    shutil.copyfile(keep, staged)
    staged.chmod(0o644)
    staged.replace(live)
    return seconds


def prompt_statuses(cfg: HotlineConfig) -> list[PromptStatus]:
    """Every prompt with where its audio comes from now: recording, tts or placeholder."""
    out = []
    for (lang_code, pid), text in sorted(prompt_texts(cfg).items()):
        rec = recording_for(cfg, lang_code, pid)
        if rec is not None:
            out.append(PromptStatus(lang_code, pid, text, "recording", rec))
        elif cfg.ivr.language(lang_code).tts is not None:
            out.append(PromptStatus(lang_code, pid, text, "tts", rec or RECORDINGS / lang_code / f"{pid}.wav"))
        else:
            out.append(PromptStatus(lang_code, pid, text, "placeholder", recorded_dir(cfg) / lang_code / f"{pid}.wav"))
    return out


def announces_waits(cfg: HotlineConfig, lang_code: str) -> bool:
    """Position/wait announcements only where every such prompt is real speech, never a chime."""
    if cfg.ivr.language(lang_code).tts is not None:
        return True
    ids = ["position_next"] + [f"position_{n}" for n in range(1, MAX_AHEAD + 1)] + \
          [f"wait_{n}" for n in range(1, MAX_MINUTES + 1)]
    return all(recording_for(cfg, lang_code, pid) is not None for pid in ids)


def missing_recordings(cfg: HotlineConfig) -> list[PromptStatus]:
    """Prompts of languages without TTS that have no operator recording yet."""
    out = []
    for (lang_code, pid), text in sorted(prompt_texts(cfg).items()):
        if cfg.ivr.language(lang_code).tts is None and recording_for(cfg, lang_code, pid) is None:
            out.append(PromptStatus(lang_code, pid, text, "placeholder", RECORDINGS / lang_code / f"{pid}.wav"))
    return out


def progress(cfg: HotlineConfig) -> dict[str, dict]:
    """Per language: how many prompts are recorded, synthesised, placeholders, and texts to translate."""
    out = {l.code: {"name": l.name, "recorded": 0, "synthesised": 0, "placeholder": 0, "total": 0, "untranslated": 0}
           for l in cfg.ivr.languages}
    names = {"recording": "recorded", "tts": "synthesised", "placeholder": "placeholder"}
    for st in prompt_statuses(cfg):
        n = out[st.lang]
        n[names[st.source]] += 1
        n["total"] += 1
        n["untranslated"] += st.text.startswith(TEXT_PLACEHOLDER)
    return out
