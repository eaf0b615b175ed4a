# kancoin: `make demo` installs and runs the codec on a bundled photo; `make test` installs and tests.
PYTHON ?= python3.11
VENV   ?= .venv
BIN    := $(VENV)/bin
PIP    := $(BIN)/python -m pip
STAMP  := $(VENV)/.installed
PRESET ?= fast
CODECS ?= siren,jpeg2000,jpeg
OUT    ?= out
FUZZ_INPUTS ?= 1000000
FUZZ_OUT    ?= fuzz-out

.PHONY: install native demo test lint fuzz rd-kodak clean

install: $(STAMP) native

# The SIREN fast step's elementwise kernels (plain C, loaded with ctypes). Without a C compiler
# (or OpenMP) it is built serially or not at all, and the step falls back to plain torch.
NATIVE := kancoin/_kernels.so
NATIVE_FLAGS := -O3 -fno-math-errno -shared -fPIC

native: $(NATIVE)

$(NATIVE): kancoin/kernels.c
	@$(CC) $(NATIVE_FLAGS) -fopenmp -o $@ $< 2>/dev/null \
	  || $(CC) $(NATIVE_FLAGS) -o $@ $< \
	  || echo "note: could not compile $<; the fast step will use plain torch" >&2

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

# the decoder's fuzz campaign (bench/fuzz.py): one worker process, reproducers in FUZZ_OUT
fuzz: install
	nice $(BIN)/python bench/fuzz.py --inputs $(FUZZ_INPUTS) --out $(FUZZ_OUT)

rd-kodak: install
	$(BIN)/python scripts/rd_kodak.py --preset $(PRESET) --codecs $(CODECS) --out results/kodak

clean:
	rm -rf $(VENV) $(OUT) .pytest_cache .ruff_cache $(NATIVE)
