# `make demo` and `make test` work on a fresh machine with only Python 3.10+ on it.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp

.PHONY: demo test clean

# Headless Chromium from Debian's packages, for the browser tests of the explainer page
# (tests/explain/test_browser.py drive it with Playwright; no browser is downloaded any other way).
CHROMIUM := /usr/bin/chromium
SUDO     := $(if $(filter 0,$(shell id -u)),,sudo)

# The virtualenv, with tconv and every extra at the versions in constraints.txt; the editable
# install also builds the optional C extension tconv._native (setup.py; generic flags, no
# -march=native: its kernels pick AVX-512, AVX2 or baseline code when they load).
$(STAMP): pyproject.toml constraints.txt setup.py src/tconv/_native.c src/tconv/_native_kernels.h
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --constraint constraints.txt --editable '.[all,test]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/tconv verify

test: $(STAMP) $(CHROMIUM)
	$(BIN)/python -m pytest

$(CHROMIUM):
	$(SUDO) apt-get update
	$(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends chromium

.PHONY: chromium
chromium: $(CHROMIUM)

clean:
	rm -rf $(VENV) build src/*.egg-info .pytest_cache .hypothesis src/tconv/_native*.so

# The tables of docs/performance.md: a full bench run (about 15 minutes), then the markdown.
# Some machines set OPENBLAS_CORETYPE (and OPENBLAS_L2_SIZE) for older OpenBLAS builds; they
# hold NumPy's current OpenBLAS to an older kernel (Haswell on an AVX-512 CPU), so the bench
# alone runs without them. The report's hardware line says which kernel NumPy's BLAS ran.
.PHONY: bench
bench: $(STAMP)
	env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE $(BIN)/tconv bench --repeats 7 --json > bench.json
	$(BIN)/python benchmarks/tables.py bench.json

# docs/figures/, drawn by the engine: the original experiment step by step (--ints: exact,
# readable numbers) and as an animation, a 1-d dilated example, the overlap maps, the matrix C,
# and screenshots of the page of `tconv explain --html` at 360 and 1280 px (in Chromium).
.PHONY: figures
figures: $(STAMP) $(CHROMIUM)
	rm -rf docs/figures && mkdir -p docs/figures
	$(BIN)/tconv explain --ints --png docs/figures --gif docs/figures/explain.gif > /dev/null
	$(BIN)/tconv explain --ints --input 1,1,8 --kernel 3 --stride 2 --padding 2 --dilation 2 \
	    --gif docs/figures/explain-1d-dilated.gif > /dev/null
	$(BIN)/tconv overlap --kernel 3 --stride 2 --png docs/figures/overlap-k3-s2.png > /dev/null
	$(BIN)/tconv overlap --kernel 4 --stride 2 --png docs/figures/overlap-k4-s2.png > /dev/null
	$(BIN)/tconv matrix --ints --png docs/figures/matrix.png > /dev/null
	TCONV_SCREENSHOTS=docs/figures $(BIN)/python -m pytest -q -p no:cacheprovider \
	    tests/explain/test_browser.py -k screenshots > /dev/null
