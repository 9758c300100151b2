"""The conversions behind `voxedge bench peers` still load in each peer and give the same answer:
whisper.cpp and CrispASR on the ggml files written from voxedge's Whisper weights read a real recording
as faster-whisper does on the CTranslate2 original, and CrispASR on a Voxtral GGUF written from random
weights emits the tokens voxedge's bundle of the same weights emits."""

import pytest

pytest.importorskip("pywhispercpp", reason="the ggml peers are in the bench extra (`make dev`)")
pytest.importorskip("crispasr", reason="the ggml peers are in the bench extra (`make dev`)")
pytest.importorskip("gguf", reason="the GGUF writer is in the bench extra (`make dev`)")
pytest.importorskip("faster_whisper", reason="faster-whisper reads the original weights")

from benchmarks.ggml_whisper import ct2_model_dir, write_ggml  # noqa: E402
from benchmarks.peer_systems import open_system  # noqa: E402
from tests.conftest import asset  # noqa: E402
from voxedge.audio import load_audio  # noqa: E402
from benchmarks.corpus import BECKETT  # noqa: E402
from benchmarks.wer import corpus_wer, normalize  # noqa: E402


@pytest.fixture(scope="module")
def beckett():
    return load_audio(asset("beckett.wav"))


@pytest.fixture(scope="module", params=["tiny.en", "base"])
def whisper_files(request, tmp_path_factory):
    """(model, CTranslate2 directory, ggml f16 file written from it)."""
    ct2 = ct2_model_dir(request.param)
    return request.param, ct2, write_ggml(ct2, tmp_path_factory.mktemp("ggml") / "model-f16.bin", "f16")


@pytest.mark.parametrize("peer", ["whisper.cpp", "crispasr"])
def test_ggml_whisper_reads_like_faster_whisper(whisper_files, peer, beckett):
    """tiny.en: word for word. base: both ggml peers hear the first "Ever" as "Never" (faster-whisper at
    int8 and float32 does not), their only difference on this clip: one word of twelve."""
    model, ct2, ggml = whisper_files
    expected = open_system("faster-whisper", str(ct2), "fp32", 2, 1)(beckett)
    text = open_system(peer, str(ggml), "f16", 2, 1)(beckett)
    assert normalize(expected) == normalize(BECKETT)
    assert corpus_wer([expected], [text]) <= (0 if model == "tiny.en" else 1 / 12)


def test_quantized_ggml_loads_in_both_peers(tmp_path, beckett):
    """whisper.cpp's quantizer layout (ftype with the quantization version, 2-D tensors only) loads."""
    path = write_ggml(ct2_model_dir("tiny.en"), tmp_path / "q8_0.bin", "q8_0")
    for peer in ("whisper.cpp", "crispasr"):
        assert "fail better" in normalize(open_system(peer, str(path), "q8_0", 2, 1)(beckett))


# a tiny Voxtral Realtime: every row tiles 32 values; the real sizes' encoder/decoder ratios
TINY = {"encoder": {"layers": 2, "hidden": 64, "heads": 2, "head_dim": 32, "mlp": 128, "window": 750, "mels": 128},
        "adapter": {"in": 256, "out": 64},
        "decoder": {"layers": 2, "hidden": 64, "heads": 2, "kv_heads": 1, "head_dim": 32, "mlp": 128, "window": 8192,
                    "vocab": 131072}}


def test_voxtral_gguf_emits_voxedge_tokens(tmp_path, beckett):
    """Same random weights (large enough to vary the argmax), f16 GGUF in CrispASR vs the fp32 bundle:
    CrispASR's text is voxedge's up to where its shorter right padding stops it, and both take one
    decoder call per 80 ms position after the 39-token prompt."""
    from benchmarks.gguf_voxtral import write_gguf
    from benchmarks.peer_voxtral import CrispVoxtral, voxedge_steps
    from benchmarks.random_voxtral import RandomCheckpoint
    from export.__main__ import Stages
    from export.voxtral import write_bundle

    import voxedge

    checkpoint = RandomCheckpoint(tmp_path / "checkpoint", TINY, scale=0.2)
    bundle = tmp_path / "bundle"
    bundle.mkdir()
    write_bundle(checkpoint, bundle, "fp32", Stages())
    model = voxedge.load(bundle)
    audio = beckett[: 6 * 16000]
    stream = model.stream(delay_ms=480)
    events = [e for i in range(0, len(audio), 1280) for e in stream.feed(audio[i : i + 1280])] + stream.close()
    ours = "".join(e.text for e in events if e.kind == "final")

    crisp = CrispVoxtral(write_gguf(checkpoint, tmp_path / "tiny-f16.gguf", "f16"), threads=2)
    try:
        their_steps = crisp.steps(audio)
    finally:
        crisp.close()
    our_steps = voxedge_steps(model, audio)
    theirs = their_steps["text"]

    assert len(set(theirs.split())) > 5, "the random model should not repeat one token"
    assert theirs.strip() and ours.startswith(theirs)
    tokens = len(audio) // 1280
    # CrispASR: 32 left-pad + audio + 10 right-pad positions; voxedge: transformers' offline padding,
    # n_d + 1 + 10 = 17 right-pad tokens of which the last position is not consumed
    assert their_steps["audio_positions"] == 32 + tokens + 10
    assert our_steps["audio_positions"] == 32 + tokens + 16
    for steps in (their_steps, our_steps):
        assert steps["decoder_calls"] == 1 + steps["audio_positions"] - 39
