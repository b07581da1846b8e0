# Two set-up commands: `make demo` and `make test`. Everything else is a helper.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test install lint clean

$(STAMP): pyproject.toml client/pyproject.toml
	test -d $(VENV) || $(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	# the CPU build of torch first, so the range in pyproject.toml pulls nothing bigger
	$(BIN)/pip install -q "torch==2.13.0"
	$(BIN)/pip install -q -e ./client -e ".[test]"
	touch $(STAMP)

install: $(STAMP)

# embedded mode (no keys, 127.0.0.1 only) is what the demo is: say so
demo: $(STAMP)
	HWNAS_EMBEDDED=true $(BIN)/hwnas demo

test: $(STAMP)
	$(BIN)/python -m pytest -q

clean:
	rm -rf $(VENV) .hwnas build *.egg-info
