"""Voicemail left in Asterisk's spool, read back so that no message goes without a callback task,
even one left while the controller was down."""
from __future__ import annotations

import configparser
import re
from dataclasses import dataclass

from core.numbering import caller_id
from core.paths import InstancePaths

VOICEMAIL_CONTEXT = "hotline"  # voicemail.conf context holding one mailbox per city


@dataclass(frozen=True)
class VoicemailMessage:
    path: str          # as Asterisk names it (VM_MESSAGEFILE): inside the chroot, no extension
    mailbox: str       # city id or the provincial pool
    caller_number: str
    msg_id: str
    origtime: float
    duration: int


def parse_message(text: str, path: str) -> VoicemailMessage | None:
    """Parse an Asterisk msgNNNN.txt; None if it is not one."""
    cp = configparser.ConfigParser(interpolation=None, strict=False)
    try:
        cp.read_string(text)
        m = cp["message"]
    except (configparser.Error, KeyError):
        return None
    num = re.search(r"<([^>]*)>", m.get("callerid", "")) or re.match(r"\s*(\S+)", m.get("callerid", ""))
    try:
        origtime = float(m.get("origtime", "0"))
        duration = int(m.get("duration", "0"))
    except ValueError:
        return None
    return VoicemailMessage(path=path, mailbox=m.get("origmailbox", ""), caller_number=caller_id(num.group(1)) if num else "",
                            msg_id=m.get("msg_id", ""), origtime=origtime, duration=duration)


def scan(paths: InstancePaths) -> list[VoicemailMessage]:
    """Every message in the hotline mailboxes' INBOX folders."""
    inner_root = paths.spool / "voicemail" / VOICEMAIL_CONTEXT
    root = paths.host(inner_root)
    out = []
    for txt in sorted(root.glob("*/INBOX/msg*.txt")):
        inner = str(inner_root / txt.relative_to(root)).removesuffix(".txt")
        try:
            msg = parse_message(txt.read_text(errors="replace"), inner)
        except OSError:
            continue
        if msg is not None:
            out.append(msg)
    return out
