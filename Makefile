# The two commands of the README, plus helpers. Each one does its own set-up first.
.PHONY: setup run chain test bench bench-core down lint

# `make run DEMO_COUNT=20000`; `make run DEMO_EXIT=1` does everything, prints and exits 0.
export DEMO_COUNT DEMO_SEED DEMO_EXIT

setup:
	@scripts/setup.sh

run: setup  ## the three-region demo: chain, three nodes, data, anchoring, exchange, audit
	@.venv/bin/credit-ledger demo

chain: setup  ## only the local chain with the contracts, until Ctrl-C
	@.venv/bin/credit-ledger chain up

down:  ## stop a chain left running by `credit-ledger chain up --detach`
	@.venv/bin/credit-ledger chain down

test: setup  ## the whole test suite
	@.venv/bin/python -m pytest $(PYTEST_ARGS)

bench: setup  ## the side-by-side benchmark suite; writes bench/report.md and bench/chart.png
	@.venv/bin/python -m bench $(BENCH_ARGS)

bench-core: setup  ## the ledger core alone (one core, no chain)
	@.venv/bin/python scripts/bench_core.py

lint: setup
	@.venv/bin/ruff check .
	@.venv/bin/mypy
