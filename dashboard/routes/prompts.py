"""IVR prompts for supervisors and the command center (issue 20): every prompt per language with its
text, number (for recording by phone), status (recorded, synthesised, placeholder) and who recorded
it when; the audio as callers hear it now; and a WAV recorded elsewhere uploaded to replace it
(converted with sox, live for the next caller). Agents and wall displays are refused (audited)."""
from __future__ import annotations

import asyncio
import tempfile
from pathlib import Path

from aiohttp import web
from pydantic import Field

from core import access
from dashboard.common import audit, bad_request, json_error, me, ok, refuse, services
from dashboard.schemas import Binary, Strict
from dashboard.spec import op
from ivr_flows.prompts import BadRecording, install_recording, prompt_numbers, prompt_statuses, prompt_texts
from store.prompts import PromptStore

routes = web.RouteTableDef()
UPLOAD_MAX_BYTES = 8 * 1024 * 1024     # two minutes of 16-bit 22 kHz stereo fit; more is not a prompt
STATUS = {"recording": "recorded", "tts": "synthesised", "placeholder": "placeholder"}


class PromptUploaded(Strict):
    lang: str
    prompt_id: str
    status: str
    version: int
    recorded_by: str
    recorded_at: str
    source: str
    seconds: float
    language: str
    id: int


class PromptsQuery(Strict):
    lang: str | None = Field(None, max_length=8, description="only this language (zh, bo, en, ii …)")


async def _allowed(request, action: str, target: str = "") -> None:
    if not access.may_manage_prompts(me(request)):
        await refuse(request, action, target=target, why="prompts are for supervisors and the command center")


def _prompt(request) -> tuple[str, str]:
    lang, pid = request.match_info["lang"], request.match_info["prompt_id"]
    if (lang, pid) not in prompt_texts(services(request).cfg):
        raise web.HTTPNotFound(text='{"error": "no such prompt in that language"}', content_type="application/json")
    return lang, pid


@routes.get("/api/prompts")
@op("prompts", "every IVR prompt per language: text, number, status (recorded / synthesised / placeholder), "
    "who recorded it and when, and progress per language; supervisors and the command center",
    tag="prompts", errors=("400", "403"), query=PromptsQuery)
async def list_prompts(request):
    await _allowed(request, "prompts_view")
    svc = services(request)
    cfg = svc.cfg
    lang = request.query.get("lang")
    codes = [l.code for l in cfg.ivr.languages]
    if lang is not None and lang not in codes:
        raise bad_request(f"lang must be one of {', '.join(codes)}")
    latest = await PromptStore(svc.db).latest()
    numbers = prompt_numbers(cfg)
    rows, progress = [], {c: {"recorded": 0, "synthesised": 0, "placeholder": 0, "total": 0} for c in codes}
    for st in await asyncio.to_thread(prompt_statuses, cfg):
        status = STATUS[st.source]
        progress[st.lang][status] += 1
        progress[st.lang]["total"] += 1
        if lang and st.lang != lang:
            continue
        row = latest.get((st.lang, st.prompt_id)) if status == "recorded" else None
        rows.append({"lang": st.lang, "prompt_id": st.prompt_id, "number": numbers.get(st.prompt_id),
                     "text": st.text, "status": status,
                     "recorded_by": row["recorded_by"] if row else None,
                     "recorded_at": row["recorded_at"] if row else None,
                     "version": row["version"] if row else None,
                     "seconds": row["seconds"] if row else None,
                     "source": row["source"] if row else ("file" if status == "recorded" else None)})
    rows.sort(key=lambda r: (codes.index(r["lang"]), r["number"] or 0))
    languages = [{"code": l.code, "name": l.name, "digit": l.digit, "tts": l.tts is not None,
                  "cities": list(l.cities), "review_note": l.review_note} for l in cfg.ivr.languages]
    return ok({"languages": languages, "prompts": rows, "progress": progress,
               "record_code": cfg.system.prompts.record_code})


@routes.get("/api/prompts/{lang}/{prompt_id}/audio")
@op("prompt_audio", "a prompt as callers hear it now, WAV 8 kHz mono; supervisors and the command center",
    tag="prompts", errors=("403", "404"), content={"audio/wav": Binary})
async def prompt_audio(request):
    """The prompt as callers hear it now (WAV, 8 kHz mono)."""
    await _allowed(request, "prompt_play", request.path)
    lang, pid = _prompt(request)
    svc = services(request)
    path = svc.paths.host(svc.paths.sounds) / lang / f"{pid}.wav"
    if not await asyncio.to_thread(path.exists):
        return json_error(404, "this prompt is not installed (run `hotline setup`)")
    return web.FileResponse(path, headers={"Content-Type": "audio/wav", "Cache-Control": "no-store"})


@routes.post("/api/prompts/{lang}/{prompt_id}/recording")
@op("prompt_upload", "replace a prompt with a WAV recorded elsewhere, sent as the raw request body (at most "
    "8 MiB, 2 minutes): converted with sox to 8 kHz mono, live for the next caller, kept as a new version "
    "with who and when; supervisors and the command center", tag="prompts", status=201,
    errors=("400", "403", "404", "413"), ok=PromptUploaded)
async def upload(request):
    """A WAV (or any audio sox reads) as the raw body: converted to telephone audio and made the prompt."""
    p = me(request)
    await _allowed(request, "prompt_upload", request.path)
    lang, pid = _prompt(request)
    svc = services(request)
    if request.content_length is not None and request.content_length > UPLOAD_MAX_BYTES:
        return json_error(413, f"a prompt recording may be at most {UPLOAD_MAX_BYTES // (1024 * 1024)} MiB")
    with tempfile.TemporaryDirectory(prefix="hl-prompt-") as tmp:
        src = Path(tmp) / "upload.wav"
        size = 0
        # read past the API's 64 KiB body limit, but never more than a prompt can be
        with open(src, "wb") as f:
            async for chunk in request.content.iter_chunked(64 * 1024):
                size += len(chunk)
                if size > UPLOAD_MAX_BYTES:
                    return json_error(413, f"a prompt recording may be at most {UPLOAD_MAX_BYTES // (1024 * 1024)} MiB")
                f.write(chunk)
        if size == 0:
            raise bad_request("send the recording as the request body (a WAV file)")
        with open(src, "rb") as f:
            magic = f.read(4)
        if magic not in (b"RIFF", b"RIFX"):
            raise bad_request("the body is not a WAV file (RIFF header missing)")
        try:
            seconds = await asyncio.to_thread(install_recording, svc.cfg, svc.paths.host(svc.paths.sounds), lang, pid, src)
        except BadRecording as e:
            raise bad_request(f"cannot use this recording: {e}")
    row = await PromptStore(svc.db).add(lang, pid, p.user_id, "upload", seconds)
    await audit(request, "prompt_uploaded", target=f"{lang}/{pid}", detail=f"version {row['version']}, {seconds:.1f} s")
    return ok({"lang": lang, "prompt_id": pid, "status": "recorded", **row}, status=201)
