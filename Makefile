# The README's two commands live here: `make demo` and `make test`.
# Setup is idempotent: it installs system packages only when missing and reinstalls Python
# packages only when pyproject.toml changes.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
APT_PACKAGES := espeak-ng sox alsa-utils chromium
# real recordings for the benchmarks' short corpus (benchmarks/bench_corpora.py), not needed by tests
BENCH_APT_PACKAGES := asterisk-core-sounds-en-wav asterisk-moh-opsound-wav
PYTEST_ARGS ?=
# the suite runs on 2 pytest workers, a test file per worker (module fixtures such as a trained
# tokenizer are built once); most tests wait on Ray starts, subprocesses and servers, so 2 workers
# finish in ~0.6 of the serial time even on 2 cores. TEST_WORKERS=0 runs it serially.
TEST_WORKERS ?= 2

# real multilingual speech for benchmarks/lid.py (asterisk en/es/fr/it/ru prompts, fillets-ng cs/nl
# dialogue): fetched by name=version with `apt-get download` into its --dir, never installed
LID_DEB_PACKAGES := asterisk-core-sounds-en-wav asterisk-core-sounds-es-wav asterisk-core-sounds-fr-wav \
  asterisk-core-sounds-it-wav asterisk-core-sounds-ru-wav fillets-ng-data-cs fillets-ng-data-nl

.PHONY: setup system-deps bench-deps bench-lid demo test bench clean-demo

setup: system-deps $(STAMP)

system-deps:
	@missing=""; \
	command -v espeak-ng >/dev/null || missing="$$missing espeak-ng"; \
	command -v sox >/dev/null || missing="$$missing sox"; \
	[ -e /usr/share/sounds/alsa/Front_Center.wav ] || missing="$$missing alsa-utils"; \
	[ -x /usr/bin/chromium ] || missing="$$missing chromium"; \
	if [ -n "$$missing" ]; then \
	  echo "installing system packages:$$missing"; \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq $$missing >/dev/null; \
	fi

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q torch==2.13.0
	$(BIN)/pip install -q -e ".[dev]"
	# speaker-encoder weights (Apache-2.0); --no-deps: only its pretrained.pt is read, and its
	# declared librosa/webrtcvad deps are unused (webrtcvad needs setuptools<81 to import)
	$(BIN)/pip install -q --no-deps resemblyzer==0.1.4
	# pyannote.audio (MIT): --no-deps skips its torchcodec pin (torchcodec needs FFmpeg libraries;
	# we pass waveforms in memory); its other deps are the [diarize] extra. torchaudio 2.11.1's
	# C++ extension is a CUDA build that cannot load with CPU torch 2.13; pyannote only uses its
	# pure-Python parts, so the .so files go (docs/diarization-pyannote.md)
	$(BIN)/pip install -q --no-deps pyannote.audio==4.0.7
	rm -f "$$($(BIN)/python -c 'import importlib.util as u; print(u.find_spec("torchaudio").submodule_search_locations[0])')"/lib/*.so
	$(BIN)/python -c 'import torch, pyannote.audio; assert torch.__version__.startswith("2.13.0"), torch.__version__'
	touch $(STAMP)

demo: setup
	$(BIN)/audiomill demo --dir demo

test: setup
	$(BIN)/python -m pytest -q -n $(TEST_WORKERS) --dist loadfile $(PYTEST_ARGS)

bench-deps:
	@[ -d /usr/share/asterisk/sounds/en_US_f_Allison ] && [ -d /usr/share/asterisk/moh ] || { \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq --no-install-recommends $(BENCH_APT_PACKAGES) >/dev/null; }

# apt-get download needs current package lists; the versions are pinned in benchmarks/lid.py
bench-lid: setup
	@apt-cache show $(LID_DEB_PACKAGES) >/dev/null 2>&1 || { SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); $$SUDO apt-get update -qq; }
	$(BIN)/python benchmarks/lid.py --dir /tmp/audiomill-lid --model base --model small

bench: setup bench-deps
	$(BIN)/python benchmarks/clean_cpu.py
	$(BIN)/python benchmarks/quality.py
	$(BIN)/python benchmarks/dedup.py

clean-demo:
	rm -rf demo
