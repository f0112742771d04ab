"""The transcriber's memory allocator. Vosk's decoder allocates and frees its tokens frame by frame;
under glibc's malloc a fifth of a warm live stream's time went to malloc_consolidate and friends
(perf, docs/performance.md "Speech recognition"), and the same stream took 20-35 % less CPU with
jemalloc preloaded. The library has to be there when the process starts, so the transcriber starts
itself again with it (same pid: exec) when it is installed; without it nothing changes."""
from __future__ import annotations

import ctypes.util
import logging
import os
import sys

log = logging.getLogger("hotline.transcriber")
MARK = "HOTLINE_ALLOCATOR"     # set on the exec: never a second try, and the log says what runs


def jemalloc() -> str | None:
    """The jemalloc library's name as the dynamic loader finds it (LD_PRELOAD takes a bare soname)."""
    return ctypes.util.find_library("jemalloc")


def preloaded() -> bool:
    return "jemalloc" in os.environ.get("LD_PRELOAD", "")


def use_jemalloc(choice: str) -> None:
    """Exec this same command line again with jemalloc preloaded, if asked for and installed."""
    if choice != "jemalloc" or preloaded() or os.environ.get(MARK):
        return
    lib = jemalloc()
    if lib is None:
        os.environ[MARK] = "system (libjemalloc not installed)"
        return
    env = {**os.environ, MARK: "jemalloc", "LD_PRELOAD": " ".join(x for x in (os.environ.get("LD_PRELOAD"), lib) if x)}
    sys.stdout.flush()
    sys.stderr.flush()
    os.execve(sys.executable, sys.orig_argv, env)


def describe() -> str:
    return "jemalloc" if preloaded() else os.environ.get(MARK, "system")
