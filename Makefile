# The two commands of README.md. Both bootstrap the environment first (idempotent: seconds when
# nothing changed; ~15 minutes on a fresh 2-core machine, most of it building mmcv once).
PY := .venv/bin/python

.PHONY: setup test test-quick demo gpu-check

setup:
	@bash tools/setup_env.sh

# Two workers (pytest-xdist), one torch thread each; each takes whole modules (their fixtures
# are made once), the longest first (tests/conftest.py): what two cores allow.
XDIST := -n 2 --dist loadfile --no-loadscope-reorder

test: setup
	$(PY) -m pytest -q $(XDIST) tests

# Not one of the two commands: the unit tests only (no training runs, no tools end to end), for
# working on one part; CI runs `make test`.
test-quick: setup
	$(PY) -m pytest -q $(XDIST) -m 'not slow' tests

demo: setup
	$(PY) tools/demo.py

# Not one of the two commands: on a GPU machine, checks the GPU path and measures it (docs/advanced_guides/performance.md).
gpu-check: setup
	$(PY) benchmarks/gpu_check.py
