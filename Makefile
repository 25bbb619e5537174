# Two commands: `make demo` (the main job on the built-in scene) and `make test` (the whole suite).
# Each creates the virtual environment and installs what is missing first.

PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
# Pinned: an unpinned torch would pull several GB, and PyPI's torchvision breaks beside torch 2.13.0.
TORCH_SPEC ?= torch==2.14.1 torchvision==0.29.1
STAMP := $(VENV)/.installed-$(shell cksum pyproject.toml | cut -d' ' -f1)
SYSTEM_PACKAGES := xvfb xauth libegl1 libgl1 libegl-mesa0

.PHONY: demo test setup system-packages bench clean

demo: setup system-packages
	$(PY) main.py view builtin

test: setup system-packages
	$(PY) -m pytest -q

# About 20 minutes on 2 cores; each script writes bench/results/<name>.json and prints a table.
bench: setup
	for name in field sa3d sam viewer; do $(PY) bench/bench_$$name.py || exit 1; done
	$(PY) bench/bench_field.py --memory

setup: $(STAMP)

$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q $(TORCH_SPEC)
	$(PY) -m pip install -q -e '.[dev]'
	@rm -f $(VENV)/.installed-* && touch $@

# Xvfb runs the real window in tests; Mesa's EGL renders with no display at all.
system-packages:
	@missing=$$(for p in $(SYSTEM_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || echo $$p; done); \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    echo "installing $$missing"; \
	    (apt-get install -y -q $$missing >/dev/null 2>&1 || (apt-get update -q >/dev/null && apt-get install -y -q $$missing >/dev/null)); \
	  else \
	    echo "optional system packages missing: $$missing (sudo apt-get install $$missing); GL tests will skip"; \
	  fi; \
	fi

clean:
	rm -rf $(VENV) .pytest_cache
