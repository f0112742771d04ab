"""The admin's place (FreePBX's ``*_custom.conf`` idea): every generated file ends by reading a file of
the admin's, ``custom/<name>_custom.conf`` next to it in the instance's etc directory. ``hotline setup``
creates each one empty (a header comment) when it is missing and never writes or deletes it again, so
an endpoint, a context or a setting added there survives every setup, up and restart.

Not for asterisk.conf (it sets the directories relative includes are resolved against; Asterisk reads
no include there) nor modules.conf (no includes either): modules come from ``asterisk.extra_modules``.
"""
from __future__ import annotations

CUSTOM_DIR = "custom"                      # under the instance's etc directory (astetcdir)
NO_INCLUDE = ("asterisk.conf", "modules.conf")
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


def custom_files(files: dict[str, str]) -> dict[str, tuple[str, int]]:
    """{relative path: (initial text, file mode)} of the admin's files for these generated ones."""
    return {custom_path(name): (
        f"; {custom_path(name)}: your additions to the generated {name}, read at its end.\n"
        f"; `hotline setup` created this file and never writes or deletes it. Start with your own [section].\n"
        f"; Apply: asterisk -rx 'core reload' (or the next `hotline up`).\n",
        0o600 if name in SECRET_FILES else 0o644)
        for name in files if name not in NO_INCLUDE}
