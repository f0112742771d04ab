# The two commands that work on a fresh machine (see README): `make demo` and `make test`.
.PHONY: demo test test-slow test-all setup up down status bench

setup:
	bash scripts/bootstrap.sh

demo: setup
	.venv/bin/hotline demo

test: setup
	.venv/bin/python -m pytest -m "not slow" -q -rs

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
