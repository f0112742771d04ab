# The two commands that work on a fresh machine (see README): `make demo` and `make test`.
.PHONY: demo test test-slow test-all setup up down status bench

setup:
	bash scripts/bootstrap.sh

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
