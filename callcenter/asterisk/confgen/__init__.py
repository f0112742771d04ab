"""Generate Asterisk's configuration files from config/ and ivr_flows/.

Pure: ``generate(cfg, secrets, paths)`` returns {file name: text}. The IVR, queues, overflow and
voicemail all live in the generated dialplan, so a live call never depends on the controller:
the controller observes (AMI events) and manages agents, it does not steer calls.

One module per file written: ``system`` (the small files), ``pjsip``, ``manager``, ``queues`` and
``extensions`` (the dialplan), whose larger context groups are in ``desk``, ``survey``, ``routing``
and ``callbacks``.
"""
from __future__ import annotations

import re

from core.config import HotlineConfig
from core.contract import Ev, Hook, Var
from core.paths import InstancePaths
from store.secrets import Secrets

from . import system
from .custom import SECRET_FILES, check_custom, custom_files, existing_problems, with_includes
from .common import HEADER, REC_OPTIONS
from .extensions import extensions_conf
from .manager import manager_conf
from .pjsip import pjsip_conf
from .queues import queues_conf
from .system import MODULES

__all__ = ["HEADER", "MODULES", "REC_OPTIONS", "SECRET_FILES", "check_contract", "check_custom", "custom_files", "existing_problems", "extensions_conf", "generate"]


def generate(cfg: HotlineConfig, secrets: Secrets, paths: InstancePaths, moddir: str) -> dict[str, str]:
    files = _files(cfg, secrets, paths, moddir)
    check_contract(files["extensions.conf"])
    return with_includes(files)


def check_contract(plan: str) -> None:
    """The dialplan keeps the contract the tracker reads (core/contract.py): every UserEvent it emits
    and every HOTLINE_* variable it sets has a name there; the admin's hooks it calls are documented ones."""
    events = set(re.findall(r"UserEvent\((\w+)", plan)) - {e.value for e in Ev}
    variables = set(re.findall(r"Set\(_{0,2}(HOTLINE_\w+)=", plan)) - {v.value for v in Var}
    hooks = set(re.findall(r"\b(hotline-hook-[\w-]+)", plan)) - {h.value for h in Hook}
    if events or variables or hooks:
        raise ValueError(f"the dialplan uses names outside core/contract.py: {sorted(events | variables | hooks)}")


def _files(cfg: HotlineConfig, secrets: Secrets, paths: InstancePaths, moddir: str) -> dict[str, str]:
    # this order is the order `hotline setup` writes them in (pinned by tests/unit/test_confgen.py)
    return {
        "asterisk.conf": system.asterisk_conf(paths, moddir, cfg.system.cluster.node or ""),
        "modules.conf": system.modules_conf(cfg),
        "logger.conf": system.logger_conf(),
        "rtp.conf": system.rtp_conf(cfg),
        "pjsip.conf": pjsip_conf(cfg, secrets),
        "manager.conf": manager_conf(cfg, secrets),
        "queues.conf": queues_conf(cfg),
        "extensions.conf": extensions_conf(cfg, paths),
        "voicemail.conf": system.voicemail_conf(cfg),
        "musiconhold.conf": system.musiconhold_conf(paths),
        "cdr.conf": system.CDR_CONF,
        **{name: HEADER for name in system.EMPTY_FILES},
        "indications.conf": system.INDICATIONS_CONF,
        "features.conf": system.FEATURES_CONF,
        "confbridge.conf": system.CONFBRIDGE_CONF,
        **system.sip_acl_files(paths),
    }
