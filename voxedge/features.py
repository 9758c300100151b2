"""Log-mel front end shared by every model family (docs/features.md writes the math down).

One transform: periodic Hann window, |rfft|^2, mel filter bank, log10, a floor 8 below a maximum,
then (x + 4) / 4. Voxtral Realtime fixes that maximum (1.5), which makes the front end causal, so
`StreamingLogMel` emits each frame as soon as its window is complete. Whisper takes the maximum of
each 30 s window, so `LogMelSpectrogram.__call__` works on whole windows.

Frames are computed so that a frame's value does not depend on which other frames are computed with
it: the chunking of the input never changes the output, bit for bit.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


LOG_FLOOR = 1e-10
DYNAMIC_RANGE = 8.0  # log10 units kept below the maximum


class LogMelSpectrogram:
    """Windows of `n_fft` samples -> normalised log-mel frames, shape [n_mels, frames]."""

    def __init__(self, mel_filters: np.ndarray, n_fft: int = 400, hop_length: int = 160, log_mel_max=None):
        """`mel_filters` is [n_fft // 2 + 1, n_mels]; `log_mel_max` None means "the maximum of each call"."""
        if mel_filters.ndim != 2 or mel_filters.shape[0] != n_fft // 2 + 1:
            raise ValueError(f"mel filters must be [{n_fft // 2 + 1}, n_mels], got {mel_filters.shape}")
        self.filters = np.asarray(mel_filters, np.float64)
        self.n_fft = n_fft
        self.hop_length = hop_length
        self.log_mel_max = log_mel_max
        self.window = 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(n_fft) / n_fft)  # periodic Hann

    @property
    def n_mels(self) -> int:
        return self.filters.shape[1]

    def log_mel(self, windows: np.ndarray) -> np.ndarray:
        """[frames, n_fft] samples -> log10 mel power [n_mels, frames], before the dynamic-range floor."""
        power = np.abs(np.fft.rfft(windows * self.window, axis=-1)) ** 2
        # einsum sums each output element in a fixed order whatever the number of frames; a BLAS matmul
        # does not, and would make the output depend on how the audio was chunked.
        return np.log10(np.maximum(np.einsum("tf,fm->mt", power, self.filters), LOG_FLOOR))

    def normalize(self, log_mel: np.ndarray, ceiling: float) -> np.ndarray:
        """Floor DYNAMIC_RANGE below `ceiling`, then scale: the model's input, float32."""
        return ((np.maximum(log_mel, ceiling - DYNAMIC_RANGE) + 4.0) / 4.0).astype(np.float32)

    def from_windows(self, windows: np.ndarray) -> np.ndarray:
        """[frames, n_fft] samples -> [n_mels, frames] float32."""
        log_mel = self.log_mel(windows)
        return self.normalize(log_mel, self.log_mel_max if self.log_mel_max is not None else log_mel.max(initial=-np.inf))

    def __call__(self, audio: np.ndarray) -> np.ndarray:
        """Whole-signal log-mel as the references compute it: centred frames over a reflect-padded signal,
        the last frame dropped, so `len(audio) // hop_length` frames."""
        return self.from_windows(self._centred_windows(np.asarray(audio, np.float64), len(audio) // self.hop_length))

    def _centred_windows(self, audio: np.ndarray, n_frames: int) -> np.ndarray:
        padded = np.pad(audio, self.n_fft // 2, mode="reflect")
        return np.lib.stride_tricks.sliding_window_view(padded, self.n_fft)[:: self.hop_length][:n_frames]

    def signal_frames(self, blocks, block_frames: int = 3000):
        """Unfloored log-mel of a whole signal given as consecutive blocks, `block_frames` frames at a
        time: exactly the frames `__call__` computes on the signal with `hop_length` zeros appended
        (len // hop + 1 frames), in bounded memory. Frame g is centred on sample g * hop; the first and last frames see the signal
        reflected at its ends, as numpy's "reflect" padding does."""
        half, hop = self.n_fft // 2, self.hop_length
        head, pending, seen, emitted = [], None, 0, 0
        for block in blocks:
            seen += len(block)
            if pending is None:  # the reflection needs the first half + 1 samples
                head.append(np.asarray(block, np.float64))
                if seen <= half:
                    continue
                start = np.concatenate(head)
                pending = np.concatenate([start[half:0:-1], start])
            else:
                pending = np.concatenate([pending, np.asarray(block, np.float64)])
            while (ready := min(block_frames, (len(pending) - self.n_fft) // hop + 1)) >= block_frames:
                yield self.log_mel(self._windows(pending, ready))
                pending, emitted = pending[ready * hop :], emitted + ready
        total = (seen + hop) // hop  # frames of the signal with `hop` zeros appended
        if pending is None:  # shorter than half a window: compute it whole
            if seen:
                yield self.log_mel(self._centred_windows(np.pad(np.concatenate(head), (0, hop)), total))
            return
        pending = np.concatenate([pending, np.zeros(hop)])
        pending = np.concatenate([pending, pending[-2 : -half - 2 : -1]])  # reflected at the end, too
        while emitted < total:
            ready = min(block_frames, total - emitted)
            yield self.log_mel(self._windows(pending, ready))
            pending, emitted = pending[ready * hop :], emitted + ready

    def _windows(self, samples: np.ndarray, n_frames: int) -> np.ndarray:
        return np.lib.stride_tricks.sliding_window_view(samples[: (n_frames - 1) * self.hop_length + self.n_fft],
                                                        self.n_fft)[:: self.hop_length]


class BufferLogMel:
    """Whisper's features of a live buffer that grows at its end and is cut at its front (LocalAgreement):
    bit for bit what `LogMelSpectrogram` gives for the whole buffer with `hop` zeros appended (the last
    frame counted in the maximum, not returned), but each call computes only the frames it has not seen.
    A frame whose window lies inside the audio never changes; the two at the front (reflected at the
    buffer's start) and the few that reach past its end are computed again at every call."""

    def __init__(self, transform: LogMelSpectrogram):
        self.transform = transform
        self._centre = 0  # sample index (in the stream) of the first kept frame's centre
        self._kept = np.zeros((transform.n_mels, 0))  # unfloored log-mel of consecutive inner frames

    def __call__(self, audio: np.ndarray, start: int) -> np.ndarray:
        """`audio`: the buffer, whose first sample is sample `start` of the stream."""
        t = self.transform
        hop, half = t.hop_length, t.n_fft // 2
        audio = np.asarray(audio, np.float64)
        padded = np.pad(audio, (0, hop))
        n = len(padded) // hop
        first = -(-half // hop)  # inner frames, [first, end): their windows lie inside the audio
        end = max(first, (len(audio) - half) // hop + 1)
        skip, aligned = divmod(start + first * hop - self._centre, hop)
        if aligned or skip < 0 or skip > self._kept.shape[1]:
            skip, self._kept = 0, self._kept[:, :0]
        kept = self._kept[:, skip:][:, : max(end - first, 0)]
        known = first + kept.shape[1]
        if known < end:
            windows = np.lib.stride_tricks.sliding_window_view(audio[known * hop - half : (end - 1) * hop + half],
                                                               t.n_fft)[::hop]
            kept = np.concatenate([kept, t.log_mel(windows)], axis=1)
        self._kept, self._centre = kept, start + first * hop
        edges = t._centred_windows(padded, n)
        log_mel = np.concatenate([t.log_mel(edges[: min(first, n)]), kept, t.log_mel(edges[first + kept.shape[1] :])],
                                 axis=1)
        return t.normalize(log_mel, log_mel.max(initial=-np.inf))[:, :-1]


class StreamingLogMel:
    """Incremental log-mel over a stream that starts with `left_pad` virtual zero samples.

    Frame g is centred on padded sample g * hop, i.e. it covers padded samples
    [g * hop - n_fft / 2, g * hop + n_fft / 2); samples before the stream are zeros. Frame g is
    emitted by the `feed` call that supplies its last sample.
    """

    def __init__(self, transform: LogMelSpectrogram, left_pad: int = 0):
        if transform.log_mel_max is None:
            raise ValueError("streaming needs a fixed log_mel_max: a per-signal maximum is not causal")
        self.transform = transform
        self._pending = np.zeros(left_pad + transform.n_fft // 2, np.float64)
        self.frames_emitted = 0

    def feed(self, samples: np.ndarray) -> np.ndarray:
        """Append samples; return the frames completed by them, [n_mels, k] (k may be 0)."""
        t = self.transform
        self._pending = np.concatenate([self._pending, np.asarray(samples, np.float64)])
        n_frames = max(0, (len(self._pending) - t.n_fft) // t.hop_length + 1)
        if n_frames == 0:
            return np.zeros((t.n_mels, 0), np.float32)
        windows = np.lib.stride_tricks.sliding_window_view(self._pending, t.n_fft)[:: t.hop_length][:n_frames]
        frames = t.from_windows(windows)
        self._pending = self._pending[n_frames * t.hop_length :]
        self.frames_emitted += n_frames
        return frames


@dataclass(frozen=True)
class StreamingPadding:
    """Voxtral Realtime's zero padding around real audio, in samples (docs/features.md).

    The left pad is fixed; the flush pad appended at end of stream grows with the delay so that the
    model gets to emit the words it was still holding back.
    """

    samples_per_token: int = 1280  # 80 ms at 16 kHz
    left_pad_tokens: int = 32
    buffer_tokens: int = 10  # mistral-common's OFFLINE_STREAMING_BUFFER_TOKENS
    n_fft: int = 400
    hop_length: int = 160

    @property
    def left_pad(self) -> int:
        return self.left_pad_tokens * self.samples_per_token

    def first_chunk(self, delay_tokens: int) -> int:
        """Real samples the prompt prefill needs: 1280 (n_d + 1) + 40 (9000 at 480 ms)."""
        return self.samples_per_token * (delay_tokens + 1) + self.n_fft // 2 - self.hop_length

    def flush_pad(self, n_real: int, delay_tokens: int) -> int:
        """Zeros appended after `n_real` real samples: up to a whole token, then n_d + 11 tokens, then
        the 40 samples that the last frame's window reaches past the offline signal."""
        align = -n_real % self.samples_per_token
        right = (delay_tokens + 1 + self.buffer_tokens) * self.samples_per_token
        return align + right + self.n_fft // 2 - self.hop_length

