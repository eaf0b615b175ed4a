# kancoin: `make demo` installs and runs the codec on a bundled photo; `make test` installs and tests.
PYTHON ?= python3.11
VENV   ?= .venv
BIN    := $(VENV)/bin
PIP    := $(BIN)/python -m pip
STAMP  := $(VENV)/.installed
PRESET ?= fast
CODECS ?= siren,jpeg2000,jpeg
OUT    ?= out
ENGINE ?= local
FORCE  ?=
FUZZ_INPUTS ?= 1000000
FUZZ_OUT    ?= fuzz-out
COHORT      ?= ../shared/data

.PHONY: help install native demo test lint check golden fuzz rd-kodak rd-audio prior clean
# `make rd-kodak` recomputes rows whose encoder source or threads changed; FORCE=1 reruns all

help:  ## this list
	@grep -hE '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-10s %s\n", $$1, $$2}'

install: $(STAMP) native  ## create .venv and install kancoin with its test tools

# The SIREN fast step's elementwise kernels (plain C, loaded with ctypes). Without a C compiler
# (or OpenMP) it is built serially or not at all, and the step falls back to plain torch.
NATIVE := kancoin/_kernels.so
NATIVE_FLAGS := -O3 -fno-math-errno -shared -fPIC

native: $(NATIVE)  ## build the C kernels of the SIREN fast step (optional)

$(NATIVE): kancoin/kernels.c
	@$(CC) $(NATIVE_FLAGS) -fopenmp -o $@ $< 2>/dev/null \
	  || $(CC) $(NATIVE_FLAGS) -o $@ $< \
	  || echo "note: could not compile $<; the fast step will use plain torch" >&2

$(STAMP): pyproject.toml constraints.txt
	@command -v $(PYTHON) >/dev/null || { echo "error: $(PYTHON) not found (set PYTHON=...)" >&2; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(PIP) install -q -c constraints.txt "pip<26"
	$(PIP) install -q -c constraints.txt -e ".[dev,ray]"
	@touch $(STAMP)

demo: install  ## encode a bundled photo at 0.3 bpp, decode it at 1x and 2x (into out/)
	@mkdir -p $(OUT)
	$(BIN)/python scripts/demo.py --out $(OUT)

test: lint  ## lint, then run the test suite (what CI runs)
	$(BIN)/python -m pytest -q

lint: install  ## ruff: lint and format check
	$(BIN)/ruff check kancoin tests bench scripts
	$(BIN)/ruff format --check kancoin tests bench scripts

check: test  ## same as test

fuzz: install  ## the decoder's fuzz campaign (bench/fuzz.py; FUZZ_INPUTS, FUZZ_OUT)
	nice $(BIN)/python bench/fuzz.py --inputs $(FUZZ_INPUTS) --out $(FUZZ_OUT)

golden: install  ## golden .inr files for what has none yet (never rewrites one)
	KANCOIN_REGEN_GOLDEN=1 $(BIN)/python scripts/make_golden.py

rd-kodak: install  ## Kodak rate-distortion sweep (PRESET=fast|default|best, CODECS=..., ENGINE=local|ray)
	$(BIN)/python scripts/rd_kodak.py --preset $(PRESET) --codecs $(CODECS) --engine $(ENGINE) --out results/kodak $(if $(FORCE),--force)

prior: install  ## rebuild the bundled prior from COHORT's cohort/ and large/ crops (never Kodak)
	@mkdir -p kancoin/data/priors
	nice $(BIN)/kancoin prior train $(COHORT)/cohort/*.png $(COHORT)/large/*.png --crop 768x512 \
	  --method shared --layers 6 --width 48 --steps 3000 --threads 1 -f \
	  -o kancoin/data/priors/photo.kprior

rd-audio: install  ## the shared audio clips at 16/32/64 kbps: kancoin vs MP3 and Opus (AUDIO_DIR=...)
	nice $(BIN)/python scripts/rd_audio.py --out results/rd-audio $(if $(FORCE),--force)

clean:  ## remove .venv, outputs and caches
	rm -rf $(VENV) $(OUT) .pytest_cache .ruff_cache $(NATIVE)
