"""Live audio from a sound device (sounddevice / PortAudio) into a RingBuffer.

PortAudio calls `_callback` on its own thread for every block; the callback only copies into the
ring (no allocation, no lock, never waits), so a slow engine can never stall the sound card: if the
engine falls behind, the oldest audio is dropped and counted, and each block read says how much.
"""

from __future__ import annotations

from .audio import SAMPLE_RATE
from .errors import DependencyError
from .ringbuffer import RingBuffer


def import_sounddevice():
    try:
        import sounddevice
    except ImportError:
        raise DependencyError(
            "live capture needs the sounddevice package: pip install 'voxedge-asr[mic]' (or pip install sounddevice)"
        ) from None
    except OSError as exc:  # sounddevice imports but cannot find the PortAudio library
        raise DependencyError(
            f"sounddevice cannot load PortAudio ({exc}); install it, e.g. `apt-get install libportaudio2` on "
            "Debian/Ubuntu/Raspberry Pi OS or `brew install portaudio` on macOS"
        ) from None
    return sounddevice


class Microphone:
    """`with Microphone() as mic: for block in mic: ...` yields ring-buffer Blocks of ~`read_ms`."""

    def __init__(self, device=None, sample_rate: int | None = SAMPLE_RATE, block_ms: int = 20,
                 buffer_seconds: float = 30.0, read_ms: int = 80):
        """`sample_rate` None uses the device's default rate (streams resample it to 16 kHz)."""
        self.device = device
        self.requested_rate = sample_rate
        self.block_ms, self.buffer_seconds, self.read_ms = block_ms, buffer_seconds, read_ms
        self.sample_rate = sample_rate or SAMPLE_RATE
        self.ring: RingBuffer | None = None
        self.device_overflows = 0  # PortAudio's own input-overflow flags (audio lost inside the driver)
        self._stream = None

    def __enter__(self) -> Microphone:
        self.open()
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def open(self) -> None:
        sd = import_sounddevice()
        rate = self.requested_rate
        if rate is None or not self._supports(sd, rate):
            rate = int(sd.query_devices(self.device, "input")["default_samplerate"])
        self.sample_rate = rate
        self.ring = RingBuffer(int(self.buffer_seconds * rate))
        self._stream = sd.InputStream(samplerate=rate, channels=1, dtype="float32", device=self.device,
                                      blocksize=rate * self.block_ms // 1000, callback=self._callback)
        self._stream.start()

    def _supports(self, sd, rate: int) -> bool:
        try:
            sd.check_input_settings(device=self.device, samplerate=rate, channels=1, dtype="float32")
            return True
        except Exception:  # PortAudio reports unsupported settings with various exception types
            return False

    def _callback(self, indata, frames, time, status) -> None:
        if status and status.input_overflow:
            self.device_overflows += 1
        self.ring.write(indata[:, 0])

    def close(self) -> None:
        if self._stream is not None:
            self._stream.stop()
            self._stream.close()
            self._stream = None

    def __iter__(self):
        """Blocks until the microphone is closed or the device stops (then what it captured is drained)."""
        if self.ring is None:
            raise RuntimeError("open the microphone first: use `with Microphone() as mic:`")
        want = self.sample_rate * self.read_ms // 1000
        while self._stream is not None and (self._stream.active or self.ring.available):
            # while the device runs, wait for a block's worth; once it has stopped, drain what is left
            if self.ring.wait(want, timeout=0.5) or not self._stream.active:
                yield self.ring.read()


def list_devices() -> str:
    """The input devices PortAudio sees, as `sounddevice` prints them."""
    return str(import_sounddevice().query_devices())
