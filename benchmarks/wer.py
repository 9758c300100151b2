"""Word error rate with one text normalizer for every system compared (jiwer does the alignment)."""

from __future__ import annotations

import re
import unicodedata

_DASHES = re.compile(r"[-\u2010-\u2015]")
_NOT_WORD = re.compile(r"[^\w\s']")


def normalize(text: str) -> str:
    """Lowercase, dashes to spaces, punctuation removed (apostrophes kept), whitespace collapsed."""
    text = unicodedata.normalize("NFKC", text).lower()
    text = _NOT_WORD.sub(" ", _DASHES.sub(" ", text))
    return " ".join(word.strip("'") for word in text.split() if word.strip("'"))


def corpus_wer(references, hypotheses) -> float:
    """Total word errors over total reference words, across all utterances."""
    import jiwer

    refs = [normalize(r) for r in references]
    hyps = [normalize(h) for h in hypotheses]
    return jiwer.wer(refs, hyps)
