# The two commands that work on a fresh machine (see README): `make demo` and `make test`.
.PHONY: demo test test-slow test-all setup install-prod lock up down status bench

setup:
	bash scripts/bootstrap.sh

# production: runtime lock only (no playwright, schemathesis, test model), see docs/operations.md
install-prod:
	HOTLINE_PROFILE=production bash scripts/bootstrap.sh

# Regenerates the Python locks from pyproject.toml (and the npm lock from dashboard/package.json), keeping
# every pin that still fits. The test lock is solved first and seeds the runtime lock, so production gets
# exactly the versions the tests ran with. Upgrade one package: make lock LOCK_ARGS="--upgrade-package NAME".
# No index or find-links lines: the lock installs with whatever index pip is configured for.
# (not PIP_*: pip reads every PIP_ variable as one of its options)
LOCK_COMPILER ?= .venv/bin/pip-compile
LOCK_OPTS = --quiet --generate-hashes --allow-unsafe --strip-extras --all-build-deps --no-emit-index-url --no-emit-find-links
LOCK_ARGS ?=
lock:
	@test -x $(LOCK_COMPILER) || { echo "no $(LOCK_COMPILER): run make setup first" >&2; exit 1; }
	$(LOCK_COMPILER) $(LOCK_OPTS) $(LOCK_ARGS) --extra test -o requirements-test.lock pyproject.toml
	cp requirements-test.lock requirements.lock
	$(LOCK_COMPILER) $(LOCK_OPTS) -o requirements.lock pyproject.toml
	cd dashboard && npm install --package-lock-only --omit-lockfile-registry-resolved --no-audit --no-fund --loglevel=error

demo: setup
	.venv/bin/hotline demo

# pytest-xdist: 4 workers, each with its own Asterisk stack (tests/helpers.py Stack); a module's tests stay
# on one worker (loadfile) and the longest modules are handed out first (tests/conftest.py LONGEST_FIRST).
test: setup
	.venv/bin/python -m pytest -m "not slow" -q -rs -n 4 --dist loadfile --no-loadscope-reorder

test-slow: setup
	.venv/bin/python -m pytest -m slow -q -rs

test-all: setup
	.venv/bin/python -m pytest -q -rs

up: setup
	.venv/bin/hotline up

down:
	.venv/bin/hotline down

status:
	.venv/bin/hotline status
