#!/usr/bin/env bash
# Idempotent setup for a fresh machine: Debian tools, the Python venv, then `hotline setup`
# (Asterisk rootfs cached in /var/cache/hotline, generated configs, prompts, database).
set -euo pipefail
cd "$(dirname "$0")/.."

need=()
have() { command -v "$1" >/dev/null 2>&1; }
have debootstrap || need+=(debootstrap)
have sipp || need+=(sip-tester)
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

PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
# the editable install maps the top-level packages that exist when it runs: a new package reinstalls
stamp=.venv/.installed-$( (cat pyproject.toml; ls -d */__init__.py) | sha256sum | cut -c1-16)
if [ ! -f "$stamp" ]; then
  .venv/bin/pip install -q --upgrade pip >/dev/null
  .venv/bin/pip install -q -e '.[test]'
  rm -f .venv/.installed-*
  touch "$stamp"
fi

# ECharts for the report pages, pinned in dashboard/package.json, served by the dashboard itself
if [ ! -f dashboard/node_modules/echarts/dist/echarts.min.js ]; then
  (cd dashboard && npm install --no-audit --no-fund --no-package-lock --loglevel=error >/dev/null)
fi

.venv/bin/hotline setup
