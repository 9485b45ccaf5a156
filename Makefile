# The two commands: `make run` and `make test`. Both set everything up from a fresh clone.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.deps-stamp
NATIVE_STAMP := $(VENV)/.native-stamp
RUST_SRC := $(shell find rust -name '*.rs') Cargo.toml Cargo.lock

.PHONY: run test venv native lint rust-test py-test bench bench-peers node-peer-if-node clean test-openadr fuzz

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet "maturin>=1.9,<2"
	# Dependencies from pyproject (the package itself is installed by `maturin develop` below).
	$(PY) -c "import tomllib;d=tomllib.load(open('pyproject.toml','rb'))['project'];print('\n'.join(d['dependencies']+d['optional-dependencies']['dev']))" > $(VENV)/requirements.txt
	$(PY) -m pip install --quiet -r $(VENV)/requirements.txt
	touch $@

venv: $(STAMP)

$(NATIVE_STAMP): $(STAMP) $(RUST_SRC)
	# Editable install: the Python sources are used in place; only the extension is compiled.
	VIRTUAL_ENV=$(abspath $(VENV)) $(VENV)/bin/maturin develop --release --quiet
	touch $@

native: $(NATIVE_STAMP)

run: native
	$(VENV)/bin/ampgate serve

rust-test:
	cargo test --release --quiet
	cargo clippy --all-targets --quiet -- -D warnings
	cargo clippy --all-targets --features python --quiet -- -D warnings
	cargo fmt --check

lint: $(STAMP)
	$(VENV)/bin/ruff check python tests bench scripts
	$(VENV)/bin/ruff format --check python tests scripts
	$(VENV)/bin/mypy

py-test: native node-peer-if-node
	# Two xdist workers: most of the suite waits on sockets and timers; tests/conftest.py keeps the heavy
	# fleet runs on one worker, one after another.
	$(PY) -m pytest -q -n 2 --dist loadgroup

test: native rust-test lint py-test

bench: native
	$(PY) bench/connections.py --connections 10000

# bench/compare.py's Node.js peer (bench/peers/ocpp_rpc/: a central system on the `ocpp-rpc` package): Node.js
# from Debian's packages when `node` is missing, then the peer's packages exactly as its committed lockfile says.
# Opt-in: `make test` never needs it (the smoke run leaves the peer out when it cannot run, and says why).
NODE_PEER := bench/peers/ocpp_rpc
# npm ci writes this last, so it is newer than the lockfile once an install has finished.
NODE_PEER_STAMP := $(NODE_PEER)/node_modules/.package-lock.json
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

$(NODE_PEER_STAMP): $(NODE_PEER)/package.json $(NODE_PEER)/package-lock.json
	command -v node >/dev/null && command -v npm >/dev/null || \
		{ $(SUDO) apt-get update && $(SUDO) apt-get install -y --no-install-recommends nodejs npm; }
	cd $(NODE_PEER) && npm ci --no-audit --no-fund

bench-peers: $(NODE_PEER_STAMP)

# For `make test`: the same install where Node.js is already there, never failing (no Node.js, or no registry,
# and the smoke run simply leaves the peer out).
node-peer-if-node:
	-@if command -v npm >/dev/null; then $(MAKE) --no-print-directory $(NODE_PEER_STAMP); \
		else echo "no Node.js: bench/compare.py's ocpp-rpc peer will be skipped (make bench-peers installs it)"; fi

# Opt-in, not part of `make test`: 10^8 seeded fuzz inputs against the WebSocket frame codec and the upgrade
# parsers (bench/fuzz_codec.rs; `cargo test` runs a 10^5 slice). Bounded by count and by FUZZ_SECONDS; holds
# /tmp/bench.lock so it never overlaps a benchmark. Writes bench/results/fuzz-codec.json; failing inputs go to
# bench/fuzz/crashes/. See docs/benchmarks.md "Fuzzing".
FUZZ_INPUTS ?= 100000000
FUZZ_SECONDS ?= 3600
fuzz:
	flock /tmp/bench.lock cargo bench --profile fuzz --bench fuzz_codec -- \
		--inputs $(FUZZ_INPUTS) --seconds $(FUZZ_SECONDS) --json bench/results/fuzz-codec.json

# Opt-in, not part of `make test`: the OpenADR VEN against a real VTN (the openleadr-vtn crate, built with cargo,
# on a throwaway PostgreSQL from Debian's package). See docs/openadr.md.
test-openadr: native
	$(PY) scripts/openadr_real_vtn.py

clean:
	rm -rf $(VENV) target
