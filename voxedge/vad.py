"""Voice activity detection with Silero VAD v6, whose ONNX graph travels in the bundle (export/vad.py).

Three layers, each usable alone:

- `SileroVad`: the graph. Immutable; one instance serves any number of streams and threads.
- `SpeechProbabilities`: one stream's speech probability per 512-sample window (32 ms at 16 kHz),
  computed exactly as faster-whisper does for a whole file: each window is preceded by the last 64
  samples of the window before it (zeros for the first), the LSTM state runs on from window to
  window, and the end of the audio is zero-padded to a whole window.
- `VadGate`: turns the probabilities into "speech_start"/"speech_end" transitions at sample indices,
  with faster-whisper's `get_speech_timestamps` rules and `VadOptions` (threshold and hysteresis,
  minimum speech, minimum silence, maximum speech, padding). Its decisions only ever look back, so a
  live gate reports the same chunks as the whole file gives, whatever the feed sizes; it reports them
  later, as soon as they are certain (docs/vad.md gives the delays). `speech_timestamps` is the gate
  run over a whole array.
"""

from __future__ import annotations

import numpy as np

from .audio import SAMPLE_RATE, to_float32, validate
from .errors import AudioError, BundleError, UnsupportedError, VoxedgeError
from .options import RuntimeOptions, VadOptions
from .runtime import create_session

WINDOW = 512  # samples per probability (32 ms)
CONTEXT = 64  # samples of the previous window that each window is given in front of its own
BLOCK_WINDOWS = 2048  # windows per graph call (about 65 s of audio, 4.7 MB of input): bounded memory


class SileroVad:
    """The Silero VAD v6 sequence graph: `run(windows [n, 576], (h, c)) -> (probabilities [n], (h, c))`.

    It runs on one CPU thread whatever the bundle's providers are: the model is small and sequential,
    so a second thread or an accelerator round trip costs more than it saves.
    """

    def __init__(self, path):
        session = create_session(path, RuntimeOptions(providers=("cpu",), threads=1))
        inputs = {i.name: i.shape for i in session.get_inputs()}
        if set(inputs) != {"input", "h", "c"} or inputs["input"][-1] != CONTEXT + WINDOW:
            raise BundleError(f"{path}: not the Silero VAD v6 sequence graph voxedge runs (inputs: {inputs}); "
                              "re-export the bundle")
        self._session = session

    @classmethod
    def from_bundle(cls, bundle) -> SileroVad:
        """The bundle's VAD; UnsupportedError if it was exported without one."""
        entry = bundle.model_section.get("vad")
        if not entry:
            raise UnsupportedError(
                f"{bundle.root}: this bundle has no voice activity detector. Re-export it with this voxedge's "
                "`python -m export` with faster-whisper installed (`pip install faster-whisper==1.2.1`, part "
                "of the export extra): the exporter copies Silero VAD into every bundle")
        expected = {"sample_rate": SAMPLE_RATE, "window_samples": WINDOW, "context_samples": CONTEXT}
        if not isinstance(entry, dict) or any(entry.get(key) != value for key, value in expected.items()):
            raise BundleError(f"{bundle.root}: the manifest's VAD ({entry!r}) is not the 16 kHz Silero VAD with "
                              "512-sample windows that this voxedge runs; re-export the bundle")
        return cls(bundle.path(str(entry.get("file"))))

    @staticmethod
    def initial_state() -> tuple[np.ndarray, np.ndarray]:
        return np.zeros((1, 1, 128), np.float32), np.zeros((1, 1, 128), np.float32)

    def run(self, windows: np.ndarray, state):
        probabilities, h, c = self._session.run(None, {"input": windows, "h": state[0], "c": state[1]})
        return probabilities, (h, c)


class SpeechProbabilities:
    """Speech probability of each 512-sample window of one stream of 16 kHz audio."""

    def __init__(self, vad: SileroVad):
        self._vad = vad
        self._state = vad.initial_state()
        self._tail = np.zeros(CONTEXT, np.float32)  # context for the next window + samples not yet in one

    def feed(self, samples: np.ndarray) -> np.ndarray:
        """Probabilities of the windows that `samples` completes (possibly none)."""
        out = [np.zeros(0, np.float32)]
        for begin in range(0, len(samples), BLOCK_WINDOWS * WINDOW):
            data = np.concatenate([self._tail, samples[begin:begin + BLOCK_WINDOWS * WINDOW]])
            n = (len(data) - CONTEXT) // WINDOW
            if n:
                # window i: the CONTEXT samples before frame i (the end of frame i - 1), then frame i
                frames = data[CONTEXT:CONTEXT + n * WINDOW].reshape(n, WINDOW)
                before = np.concatenate([data[None, :CONTEXT], frames[:-1, WINDOW - CONTEXT:]])
                probabilities, self._state = self._vad.run(np.concatenate([before, frames], axis=1), self._state)
                out.append(probabilities)
            self._tail = data[n * WINDOW:]
        return np.concatenate(out)

    def flush(self) -> np.ndarray:
        """The last window: the samples left over, zero-padded to 512 (a whole zero window when none
        are left over, as faster-whisper pads)."""
        window = np.zeros(CONTEXT + WINDOW, np.float32)
        window[:len(self._tail)] = self._tail
        self._tail = window[-CONTEXT:]
        probabilities, self._state = self._vad.run(window[None], self._state)
        return probabilities


class _Detector:
    """faster-whisper's `get_speech_timestamps` decision loop, one window at a time: speeches before
    padding, as (start, end) sample indices. Each decision depends only on the windows seen so far."""

    def __init__(self, options: VadOptions):
        rate = SAMPLE_RATE  # the float expressions are faster-whisper's, so comparisons round alike
        self.threshold = options.threshold
        neg = options.neg_threshold
        self.neg_threshold = max(options.threshold - 0.15, 0.01) if neg is None else neg
        self.min_speech = rate * options.min_speech_duration_ms / 1000
        pad = rate * options.speech_pad_ms / 1000
        self.max_speech = rate * options.max_speech_duration_s - WINDOW - 2 * pad
        self.min_silence = rate * options.min_silence_duration_ms / 1000
        self.min_silence_at_max_speech = rate * 98 / 1000
        self.windows = 0  # windows seen
        self.triggered = False  # in a speech; it began at `start`
        self.start = 0
        self.temp_end = self.prev_end = self.next_start = 0  # 0 means "none", as in faster-whisper

    def step(self, probability: float) -> list[tuple[int, int]]:
        """Take the next window; returns the speeches it closed that are kept."""
        here = WINDOW * self.windows
        self.windows += 1
        speech = probability >= self.threshold
        if speech and self.temp_end:
            self.temp_end = 0
            if self.next_start < self.prev_end:
                self.next_start = here
        if speech and not self.triggered:
            self.triggered, self.start = True, here
            return []
        closed = []
        if self.triggered and here - self.start > self.max_speech:  # too long: split it
            if self.prev_end:  # at the last silence of more than 98 ms
                closed.append((self.start, self.prev_end))
                if self.next_start < self.prev_end:
                    self.triggered = False
                else:
                    self.start = self.next_start
                self.prev_end = self.next_start = self.temp_end = 0
            else:  # or right here
                closed.append((self.start, here))
                self.prev_end = self.next_start = self.temp_end = 0
                self.triggered = False
                return closed
        if probability < self.neg_threshold and self.triggered:
            if not self.temp_end:
                self.temp_end = here
            if here - self.temp_end > self.min_silence_at_max_speech:
                self.prev_end = self.temp_end
            if here - self.temp_end < self.min_silence:
                return closed
            if self.temp_end - self.start > self.min_speech:
                closed.append((self.start, self.temp_end))
            self.prev_end = self.next_start = self.temp_end = 0
            self.triggered = False
        return closed

    def open_speech_is_kept(self) -> bool:
        """Whether the speech in progress is kept whatever the coming windows hold. Its end will be at
        `temp_end` if one is set, else at or after the next window; only valid between whole windows
        of real audio (the end of the audio is at least there)."""
        earliest_end = self.temp_end or WINDOW * self.windows
        return self.triggered and earliest_end - self.start > self.min_speech

    def finish(self, length: int) -> list[tuple[int, int]]:
        """End of the audio (`length` samples): the speech in progress, if kept."""
        if self.triggered and length - self.start > self.min_speech:
            return [(self.start, length)]
        return []


class VadGate:
    """Live speech/silence transitions of one 16 kHz stream.

    `feed(samples)` and `close()` return `[(kind, sample_index)]`, kind "speech_start" or
    "speech_end", alternating, indices counted from the first sample fed and never decreasing. The
    chunks they delimit are those of `speech_timestamps` on the whole audio (padding included) for any
    feed sizes. A transition is reported once it is certain, so its index lies in the past: keep the
    audio from `settled` on (with `min_speech_duration_ms=0`, at most `speech_pad_ms` + 64 ms behind
    the audio fed). The gate's own memory is constant; a gate serves one stream.
    """

    def __init__(self, vad: SileroVad, options: VadOptions | None = None):
        options = VadOptions() if options is None else options
        self._probabilities = SpeechProbabilities(vad)
        self._detector = _Detector(options)
        self._pad = SAMPLE_RATE * options.speech_pad_ms / 1000
        self._reported = None  # start (before padding) of the speech whose speech_start was reported
        self._pending = None  # end (before padding) of the last kept speech, its speech_end not reported
        self._last = 0  # index of the last transition reported
        self.samples = 0  # samples fed
        self.closed = False

    @property
    def in_speech(self) -> bool:
        return self._reported is not None or self._pending is not None

    @property
    def settled(self) -> int:
        """No transition reported from now on has an index below this: outside speech, the audio
        before it is silence and need not be kept."""
        if self._pending is not None:
            return self._pending
        if self._reported is not None:
            return self._last
        return max(self._last, int(self._next_start_bound() - self._pad), 0)

    def feed(self, samples) -> list[tuple[str, int]]:
        if self.closed:
            raise VoxedgeError("this VAD gate is closed; start a new one")
        samples = to_float32(samples)
        if samples.ndim != 1:
            raise AudioError(f"the VAD takes mono 16 kHz samples (1-D), got shape {samples.shape}")
        if not samples.size:
            return []
        validate(samples)
        self.samples += samples.size
        events = []
        for probability in self._probabilities.feed(samples):
            self._step(probability, events, whole_window=True)
        return events

    def close(self) -> list[tuple[str, int]]:
        """End of the audio: the last partial window, then whatever speech is still open."""
        if self.closed:
            return []
        self.closed = True
        events = []
        for probability in self._probabilities.flush():
            self._step(probability, events, whole_window=False)
        for start, end in self._detector.finish(self.samples):
            self._speech_closed(start, end, events)
        if self._pending is not None:
            self._end_pending(events)
        return events

    def _step(self, probability: float, events: list, whole_window: bool) -> None:
        for start, end in self._detector.step(probability):
            self._speech_closed(start, end, events)
        detector = self._detector
        if whole_window and detector.open_speech_is_kept() and self._reported != detector.start:
            self._start(detector.start, events)
        if self._pending is not None and self._next_start_bound() - self._pending >= 2 * self._pad:
            self._end_pending(events)

    def _next_start_bound(self) -> int:
        """The earliest start (before padding) that a kept speech not yet reported can have."""
        detector = self._detector
        if detector.triggered and self._reported != detector.start:
            return detector.start
        return WINDOW * detector.windows

    def _speech_closed(self, start: int, end: int, events: list) -> None:
        if self._reported != start:
            self._start(start, events)
        self._reported = None
        self._pending = end

    def _start(self, start: int, events: list) -> None:
        """Report a kept speech's start, padded as faster-whisper pads: a gap to the previous speech
        shorter than two paddings is split between the two."""
        padded = start - self._pad
        if self._pending is not None and start - self._pending < 2 * self._pad:
            half_gap = (start - self._pending) // 2
            self._report(events, "speech_end", self._pending + half_gap)
            self._pending = None
            padded = start - half_gap
        elif self._pending is not None:
            self._end_pending(events)
        self._report(events, "speech_start", max(0, padded))
        self._reported = start

    def _end_pending(self, events: list) -> None:
        self._report(events, "speech_end", min(self.samples, self._pending + self._pad))
        self._pending = None

    def _report(self, events: list, kind: str, index) -> None:
        self._last = int(index)
        events.append((kind, self._last))


def speech_timestamps(vad: SileroVad, audio, options: VadOptions | None = None) -> list[tuple[int, int]]:
    """Speech chunks of 16 kHz mono `audio` as [(start_sample, end_sample)]: faster-whisper's
    `get_speech_timestamps` (same rules, options and results)."""
    gate = VadGate(vad, options)
    events = gate.feed(audio) + gate.close()
    return [(start, end) for (_, start), (_, end) in zip(events[::2], events[1::2])]
