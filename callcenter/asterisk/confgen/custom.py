"""The admin's place (FreePBX's ``*_custom.conf`` idea): every generated file ends by reading a file of
the admin's, ``custom/<name>_custom.conf`` next to it in the instance's etc directory. ``hotline setup``
creates each one with a header comment when it is missing and never writes or deletes it again, so
an endpoint, a context, a module or a setting added there survives every setup, up and restart.

Not for asterisk.conf: it sets the directory relative includes are resolved against. (Asterisk 22 does
read an include in modules.conf, whatever older documentation says: tried on this rootfs.)
"""
from __future__ import annotations

import re
from pathlib import Path

from core.contract import Hook

CUSTOM_DIR = "custom"                      # under the instance's etc directory (astetcdir)
NO_INCLUDE = ("asterisk.conf",)
SECRET_FILES = ("pjsip.conf", "manager.conf")   # their custom files may hold passwords too: 0600


def custom_path(name: str) -> str:
    """``pjsip.conf`` -> ``custom/pjsip_custom.conf`` (relative to astetcdir, as #tryinclude reads it)."""
    return f"{CUSTOM_DIR}/{name.removesuffix('.conf')}_custom.conf"


def with_includes(files: dict[str, str]) -> dict[str, str]:
    # #tryinclude: a missing file (a fresh instance, or one the admin deleted) is no error
    return {name: text if name in NO_INCLUDE else
            f"{text.rstrip(chr(10))}\n\n; the admin's additions, never overwritten (docs/operations.md)\n"
            f"#tryinclude {custom_path(name)}\n"
            for name, text in files.items()}


def existing_problems(etc: Path, files: dict[str, str]) -> dict[Path, list[str]]:
    """check_custom on each of the admin's files present under ``etc`` (the instance's, on the host)."""
    found = {etc / rel: check_custom(p.read_text(encoding="utf-8"))
             for rel in custom_files(files) if (p := etc / rel).exists()}
    return {path: problems for path, problems in found.items() if problems}


def custom_files(files: dict[str, str]) -> dict[str, tuple[str, int]]:
    """{relative path: (initial text, file mode)} of the admin's files for these generated ones."""
    return {custom_path(name): (
        f"; {custom_path(name)}: your additions to the generated {name}, read at its end.\n"
        f"; `hotline setup` created this file and never writes or deletes it. Start with your own [section];\n"
        f"; to add to one of the generated sections write [that-section](+)"
        + (", here [modules](+) (a second [modules] is ignored)" if name == "modules.conf" else "") + ".\n"
        f"; Apply: asterisk -rx 'core reload' (or the next `hotline up`). See docs/operations.md.\n",
        0o600 if name in SECRET_FILES else 0o644)
        for name in files if name not in NO_INCLUDE}


def check_custom(text: str) -> list[str]:
    """What in an admin's file would break the generated one; [] if nothing. Asterisk reads the file as
    the continuation of the generated one: a setting before the first [section] would land in the
    generated file's last section (seen: it broke pjsip.conf's TLS transport). In the dialplan, a
    hotline-hook-* context must be a documented hook (a misspelt one would never run) and return."""
    problems, section, returns = [], None, {}
    for n, raw in enumerate(text.splitlines(), 1):
        line = raw.split(";", 1)[0].strip()
        if not line or line.startswith("#"):
            continue
        if m := re.fullmatch(r"\[([^\]]+)\](\(.*\))?", line):
            section = m.group(1)
            if section.startswith("hotline-hook-"):
                returns.setdefault(section, False)
        elif section is None:
            problems.append(f"line {n}: {line!r} comes before any [section] and would change the "
                            "generated file's last section: start the file with your own [section]")
        elif section in returns and "Return(" in line:
            returns[section] = True
    known = {h.value for h in Hook}
    for hook, returned in returns.items():
        if hook not in known:
            problems.append(f"[{hook}] is no hook of the generated dialplan "
                            f"(known: {', '.join(sorted(known))})")
        elif not returned:
            problems.append(f"[{hook}] has no Return(): the call would end in the hook")
    return problems
