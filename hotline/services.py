"""Production service management: systemd units (`hotline install-services`) and the pinned Asterisk
rootfs (`hotline rootfs export|import|version`). `hotline up` stays the development way to run it all."""
from __future__ import annotations

import shlex
import shutil
import sys
from pathlib import Path

from core.config import HotlineConfig
from hotline.common import _config, console, cores_fit

TARGET = "hotline.target"
ASTERISK_UNIT = "hotline-asterisk.service"
# the daemons `hotline up` starts (hotline/ops.py DAEMONS), one unit each
DAEMON_UNITS = {"serve": "hotline-controller.service", "transcriber": "hotline-transcriber.service",
                "interop": "hotline-interop.service"}
DAEMON_TEXT = {"serve": "controller and HTTP API", "transcriber": "transcription daemon",
               "interop": "partner outbox and federation reports"}

# Every unit: journald takes stdout/stderr (no log files to rotate), restart after a crash but not
# after a clean stop, and a pause between restarts so a crash loop does not spin the CPU.
COMMON = """\
Restart=on-failure
RestartSec=5
StandardOutput=journal
StandardError=journal
# the host stays read-only to the service except ReadWritePaths; no home directories; its own /tmp
ProtectSystem=strict
ProtectHome=yes
PrivateTmp=yes
# no setuid binary or file capability can give the process more than it started with
NoNewPrivileges=yes
ProtectKernelTunables=yes
ProtectKernelModules=yes
ProtectKernelLogs=yes
ProtectControlGroups=yes
ProtectClock=yes
RestrictRealtime=yes
RestrictSUIDSGID=yes
LockPersonality=yes
SystemCallArchitectures=native
"""


def _hotline_exe() -> str:
    """The venv's `hotline` script beside the running interpreter (absolute: systemd has no PATH
    of ours); `python -m hotline.cli` if the script is not there."""
    exe = Path(sys.executable).parent / "hotline"
    return str(exe) if exe.exists() else f"{sys.executable} -m hotline.cli"


def units(cfg: HotlineConfig, user: str, uid: int, gid: int) -> dict[str, str]:
    """{file name: text} of hotline.target and its services for this node's config."""
    from callcenter.asterisk.runtime import GROUP
    from core.paths import InstancePaths

    a = cfg.system.asterisk
    paths = InstancePaths(cfg.resolve(a.rootfs), a.instance)
    instance = paths.host(paths.inner)
    chroot = shutil.which("chroot") or "/usr/sbin/chroot"
    state = cfg.state_dir.resolve()
    root = cfg.root.resolve()
    out: dict[str, str] = {}
    wanted = [ASTERISK_UNIT]
    # cores of its own (asterisk.cpus); the daemons keep off them themselves (hotline/daemons.py)
    affinity = f"CPUAffinity={' '.join(map(str, a.cpus))}\n" if a.cpus else ""
    out[ASTERISK_UNIT] = f"""\
[Unit]
Description=12348 hotline: Asterisk 22 ({a.instance}) in its rootfs {paths.rootfs}
After=network-online.target
Wants=network-online.target
PartOf={TARGET}

[Service]
Type=simple
# chroot starts as root for the one thing that needs it, then --userspec drops to the Asterisk user
# ({uid}:{gid}, created by `hotline setup`) before exec: Asterisk runs with no capability at all
ExecStart={chroot} --userspec={uid}:{gid} {paths.rootfs} /usr/sbin/asterisk -C {paths.conf_file} -f -n
# chroot(2) needs CAP_SYS_CHROOT; --userspec needs CAP_SETUID and CAP_SETGID (setgroups, setgid,
# setuid). Nothing else: every port is above 1024, and after setuid even these are gone
CapabilityBoundingSet=CAP_SYS_CHROOT CAP_SETUID CAP_SETGID
# the instance's spool, logs, astdb and run files; the rootfs's /tmp (Asterisk's own temporary files)
ReadWritePaths={instance} {paths.rootfs}/tmp
# SIP, RTP and AMI over IP; the console socket; netlink to list interfaces (PJSIP)
RestrictAddressFamilies=AF_INET AF_INET6 AF_UNIX AF_NETLINK
# its files are group-writable for our daemons ({GROUP}), nobody else's
UMask=0007
LimitNOFILE=65536
{affinity}{COMMON}
[Install]
WantedBy={TARGET}
"""
    exe = _hotline_exe()
    enabled = {"serve": True, "transcriber": cfg.system.transcription.enabled, "interop": cfg.system.interop.enabled or cfg.system.sms.enabled}
    for daemon, unit in DAEMON_UNITS.items():
        if not enabled[daemon]:
            continue
        wanted.append(unit)
        # the controller writes the SIP blocklist in the instance's lib/; the transcriber deletes
        # recordings past their retention in the spool
        rw = [str(state)] + ({"serve": [str(instance / "lib")],
                              "transcriber": [str(instance / "spool")]}.get(daemon, []))
        out[unit] = f"""\
[Unit]
Description=12348 hotline: {DAEMON_TEXT[daemon]}
After=network-online.target postgresql.service redis-server.service {ASTERISK_UNIT}
Wants=network-online.target {ASTERISK_UNIT}
PartOf={TARGET}

[Service]
Type=simple
ExecStart={exe} --root {shlex.quote(str(root))} {daemon}
WorkingDirectory={root}
# an unprivileged user in the group that shares Asterisk's files ({GROUP})
User={user}
Group={GROUP}
ReadWritePaths={' '.join(rw)}
# TCP and UDP (HTTP, AMI, Redis, PostgreSQL, AudioSocket) and local sockets only
RestrictAddressFamilies=AF_INET AF_INET6 AF_UNIX
# no capability: nothing binds below 1024 and no file is someone else's to touch
CapabilityBoundingSet=
AmbientCapabilities=
PrivateDevices=yes
RestrictNamespaces=yes
UMask=0007
{COMMON}
[Install]
WantedBy={TARGET}
"""
    out[TARGET] = f"""\
[Unit]
Description=12348 public legal service hotline (Asterisk and its daemons)
Wants={' '.join(wanted)}
After=network-online.target

[Install]
WantedBy=multi-user.target
"""
    return out


def cmd_install_services(args) -> int:
    from callcenter.asterisk.runtime import asterisk_ids

    cfg = _config(args)
    if not cores_fit(cfg):      # units are written on the machine they run on
        return 2
    uid, gid = asterisk_ids()
    dest = Path(args.dest)
    dest.mkdir(parents=True, exist_ok=True)
    for name, text in units(cfg, args.user, uid, gid).items():
        (dest / name).write_text(text)
        print(dest / name)
    if any(Path(p).resolve().is_relative_to(h) for p in (cfg.root, sys.executable) for h in ("/home", "/root")):
        console.print("[yellow]the checkout or the venv is under /home or /root, which ProtectHome=yes hides from the "
                      "services: install under /opt (docs/operations.md)[/yellow]")
    console.print(f"next: `useradd --system --gid hotline --home-dir {cfg.state_dir.resolve()} --shell "
                  f"/usr/sbin/nologin {args.user}` (once), `chown -R {args.user}:hotline {cfg.state_dir.resolve()}`, "
                  f"`systemctl daemon-reload && systemctl enable --now {TARGET}` (docs/operations.md)")
    return 0


def cmd_rootfs(args) -> int:
    from callcenter.asterisk.rootfs import RootfsError, check_version, export, import_

    cfg = _config(args)
    rootfs = cfg.resolve(cfg.system.asterisk.rootfs)
    if args.action != "version" and not args.file:
        console.print(f"[red]rootfs {args.action} needs a FILE[/red]")
        return 2
    try:
        if args.action == "version":
            print(check_version(rootfs))
        elif args.action == "export":
            version = export(rootfs, Path(args.file))
            console.print(f"{args.file}: {version}; manifest {args.file}.sha256 (copy both)")
        else:
            version = import_(Path(args.file), rootfs)
            console.print(f"{rootfs}: {version} imported; run `hotline setup` to reinstall this node's files")
    except RootfsError as e:
        console.print(f"[red]{e}[/red]", highlight=False)
        return 1
    return 0


def register(sub) -> None:
    s = sub.add_parser("install-services", help="write systemd units for Asterisk and the daemons (production)")
    s.add_argument("--dest", default="/etc/systemd/system", help="where to write them (default /etc/systemd/system)")
    s.add_argument("--user", default="hotline", help="the unprivileged user the daemons run as (default hotline)")
    s.set_defaults(func=cmd_install_services)
    s = sub.add_parser("rootfs", help="the Asterisk rootfs: its recorded version, or export/import a pinned one")
    s.add_argument("action", choices=["version", "export", "import"])
    s.add_argument("file", nargs="?", help="export/import: FILE.tar.zst, .tar.gz or .tar (manifest FILE.sha256)")
    s.set_defaults(func=cmd_rootfs)
