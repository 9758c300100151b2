"""Whisper's language and task: the start sequence that asks for them, and language detection.

A multilingual model is told what to do by the tokens after <|startoftranscript|>: a language token
and <|transcribe|> or <|translate|> (to English). An English-only model has no such tokens. Detection
is faster-whisper's (CTranslate2's `detect_language`): the decoder's logits after
<|startoftranscript|> alone, restricted to the language tokens, softmax; the likeliest language wins.
"""

from __future__ import annotations

import numpy as np

from ..errors import OptionError, UnsupportedError


def check(config, language: str | None, task: str) -> None:
    """Refuse a language or task the model cannot do, naming what it can."""
    if not config.languages:
        if language not in (None, "en"):
            raise UnsupportedError(f"this Whisper model is English-only: language must be 'en' (or None), not "
                                   f"{language!r}; use a multilingual model (whisper-base) for other languages")
        if task != "transcribe":
            raise UnsupportedError("this Whisper model is English-only: it cannot translate; use a multilingual "
                                   "model (whisper-base)")
    elif language is not None and language not in config.languages:
        raise OptionError(f"unknown language {language!r}: this model knows {', '.join(sorted(config.languages))} "
                          "(or None to detect it)")


def start_sequence(config, language: str | None, task: str) -> tuple[int, ...]:
    """<|startoftranscript|> [<|language|> <|task|>]; `language` must be known for a multilingual model."""
    sot = config.tokens.sot
    if not config.languages:
        return (sot,)
    task_token = config.tokens.translate if task == "translate" else config.tokens.transcribe
    return sot, config.languages[language], task_token


def detect(logits: np.ndarray, languages: dict) -> tuple[str, float]:
    """(language, its probability) from the decoder's logits after <|startoftranscript|> alone
    (`WindowDecoder.prefill(cross, [sot])`)."""
    codes = list(languages)
    scores = logits[np.fromiter(languages.values(), np.int64, len(codes))].astype(np.float64)
    probabilities = np.exp(scores - scores.max())
    probabilities /= probabilities.sum()
    best = int(np.argmax(probabilities))
    return codes[best], float(probabilities[best])
