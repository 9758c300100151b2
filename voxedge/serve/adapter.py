"""The only module of the server that calls the model: loading, file transcription, live streams and
the model listing. When the runtime API changes, this file changes and the protocols do not.

Requests become option fields (`voxedge.options`); a field the loaded model's family does not support
is refused by the model with `UnsupportedError`, which the protocols report, instead of being dropped.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from ..audio import SAMPLE_RATE
from ..errors import UnsupportedError

# The languages a family transcribes when its bundle does not list them (Voxtral Mini 4B Realtime: the 13
# of its model card); a Whisper bundle lists its languages, or none when it is English-only.
FAMILY_LANGUAGES = {"voxtral_realtime": ("en", "es", "fr", "de", "it", "pt", "nl", "ru", "ar", "hi", "ko", "ja", "zh")}


class Engine:
    """One loaded model, shared by every client; each live client gets its own `LiveTranscriber`."""

    def __init__(self, model, name: str):
        self.model = model
        self.name = name  # what /v1/models and Wyoming's info call it
        self.created = int(time.time())
        self.defaults: dict = {}  # fields every stream and file gets (e.g. the CLI's --delay-ms)

    @classmethod
    def load(cls, name_or_dir, *, providers=("cpu",), threads: int | None = None) -> Engine:
        from ..model import load

        model = load(name_or_dir, providers=tuple(providers), threads=threads)
        return cls(model, Path(str(name_or_dir)).name or str(name_or_dir))

    @property
    def family(self) -> str:
        return self.model.family

    @property
    def languages(self) -> tuple[str, ...]:
        """Language codes the model transcribes."""
        listed = getattr(self.model.config, "languages", None)
        if listed:
            return tuple(listed)
        return FAMILY_LANGUAGES.get(self.family, ("en",))

    def models(self) -> list[dict]:
        """The model listing (GET /v1/models): the loaded model first (it serves every request), then
        the rest of voxedge's catalog (`voxedge models`)."""
        from ..catalog import CATALOG

        names = [self.name] + [name for name in CATALOG if name != self.name]
        return [{"id": name, "object": "model", "created": self.created, "owned_by": "voxedge",
                 "loaded": name == self.name} for name in names]

    # -- files ----------------------------------------------------------------------------------

    def transcribe(self, samples: np.ndarray, *, language: str | None = None, prompt: str | None = None):
        """Segments of 16 kHz mono samples, as the model decides them (a generator: the server pulls
        one at a time, so other clients get their turn between windows)."""
        fields = self._fields(language, {"initial_prompt": prompt} if prompt else {})
        return self.model.transcribe(samples, sample_rate=SAMPLE_RATE, **fields)

    # -- live -----------------------------------------------------------------------------------

    def open_stream(self, *, language: str | None = None) -> LiveTranscriber:
        return LiveTranscriber(self.model.stream(**self._fields(language, {})))

    def _fields(self, language: str | None, fields: dict) -> dict:
        """Option fields: the language is checked against the model's, and passed only to a multilingual
        model (an English-only one has nothing to choose)."""
        if language is not None:
            language = language.strip().lower()
            if language not in self.languages:
                raise UnsupportedError(
                    f"language {language!r} is not one this model transcribes ({', '.join(self.languages)})")
            if len(self.languages) > 1:
                fields = {"language": language, **fields}
        return {**self.defaults, **fields}


class LiveTranscriber:
    """A live stream of one client. Not thread-safe: one call at a time (the scheduler sees to it)."""

    def __init__(self, stream):
        self._stream = stream

    def feed(self, block, sample_rate: int) -> list:
        """Audio (a `voxedge.ringbuffer.Block`, whose drop count the stream reports) -> `voxedge.Event`s."""
        return self._stream.feed(block, sample_rate)

    def close(self) -> list:
        """End of audio: the events the model still held."""
        return self._stream.close()
