"""export/mel.py: the numpy Slaney filter bank is transformers' own, bit for bit (so a bundle built without
transformers holds the same mel_filters.npy)."""

import numpy as np
import pytest

pytest.importorskip("transformers", reason="transformers' feature extractors are the reference")

from transformers import WhisperFeatureExtractor  # noqa: E402
from transformers.models.voxtral_realtime.feature_extraction_voxtral_realtime import (  # noqa: E402
    VoxtralRealtimeFeatureExtractor,
)

from export.mel import slaney_mel_filters  # noqa: E402


@pytest.mark.parametrize("extractor", [WhisperFeatureExtractor, VoxtralRealtimeFeatureExtractor])
@pytest.mark.parametrize("n_mels", [80, 128])
def test_slaney_filters_are_transformers_filters_bit_for_bit(extractor, n_mels):
    reference = extractor(feature_size=n_mels).mel_filters.astype(np.float32)  # as the exports stored it
    ours = slaney_mel_filters(n_mels)
    assert ours.dtype == np.float32 and ours.shape == reference.shape == (201, n_mels)
    assert np.array_equal(ours, reference)
    assert (ours.max(axis=0) > 0).all()  # every band has weight: the test is not comparing empty tables
