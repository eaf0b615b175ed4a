# kancoin: `make demo` installs and runs the codec on a bundled photo; `make test` installs and tests.
PYTHON ?= python3.11
VENV   ?= .venv
BIN    := $(VENV)/bin
PIP    := $(BIN)/python -m pip
STAMP  := $(VENV)/.installed
PRESET ?= fast
OUT    ?= out

.PHONY: install demo test lint rd-kodak clean

install: $(STAMP)

$(STAMP): pyproject.toml constraints.txt
	@command -v $(PYTHON) >/dev/null || { echo "error: $(PYTHON) not found (set PYTHON=...)" >&2; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(PIP) install -q -c constraints.txt "pip<26"
	$(PIP) install -q -c constraints.txt -e ".[dev]"
	@touch $(STAMP)

demo: install
	@mkdir -p $(OUT)
	$(BIN)/python scripts/demo.py --out $(OUT)

test: install
	$(BIN)/python -m pytest -q

lint: install
	$(BIN)/ruff check kancoin tests bench scripts
	$(BIN)/ruff format --check kancoin tests bench scripts

rd-kodak: install
	$(BIN)/python scripts/rd_kodak.py --preset $(PRESET) --out results/kodak

clean:
	rm -rf $(VENV) $(OUT) .pytest_cache .ruff_cache
