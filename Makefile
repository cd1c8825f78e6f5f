# The two commands of the README, plus helpers. Each one does its own set-up first.
.PHONY: setup run test bench down lint

setup:
	@scripts/setup.sh

run: setup  ## the local consortium on its embedded defaults
	@.venv/bin/python scripts/consortium.py up

down:
	@.venv/bin/python scripts/consortium.py down

test: setup  ## the whole test suite
	@.venv/bin/python -m pytest $(PYTEST_ARGS)

bench: setup
	@.venv/bin/python scripts/bench_core.py

lint: setup
	@.venv/bin/ruff check .
	@.venv/bin/mypy
