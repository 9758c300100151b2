"""The prompt-prefix snapshot (export/voxtral/prefix.py): sessions that start from the stored caches give
transformers' tokens at every supported delay and after end-of-sequence restarts, and a bundle exported
before the snapshot (none in its manifest) still works by prefilling the whole prompt."""

import json
import shutil

import numpy as np
import pytest

import voxedge
from export.voxtral.reference import generate
from voxedge.bundle import MANIFEST, manifest_checksum, open_bundle, sha256_file
from voxedge.errors import BundleError

from .conftest import PRESETS, run_stream


def without_prefix(bundle, out):
    """A copy of `bundle` as the exporter wrote it before the snapshot: no prefix entry, no prefix files."""
    copy = shutil.copytree(bundle, out)
    manifest = json.loads((copy / MANIFEST).read_text())
    prefix = manifest["model"].pop("prefix")
    for name in (prefix["encoder_kv"], prefix["conv1_state"], prefix["conv2_state"], prefix["decoder_kv"]):
        (copy / name).unlink()
        del manifest["files"][name]
    manifest["checksum"] = manifest_checksum(manifest)
    (copy / MANIFEST).write_text(json.dumps(manifest))
    return copy


@pytest.fixture(scope="module")
def fp32(bundles):
    return voxedge.load(bundles["fp32"])


@pytest.fixture(scope="module")
def old_bundles(bundles, tmp_path_factory):
    root = tmp_path_factory.mktemp("voxtral-no-prefix")
    return {preset: without_prefix(bundles[preset], root / preset) for preset in PRESETS}


def prefills(stream):
    """Record the positions of every decoder call of more than one position that asks for the last
    position's logits only (the prompt prefills, not the verification of drafted steps)."""
    decoder = stream.engine._decoder
    run, sizes = decoder.run, []

    def counted(feeds, n_new):
        if n_new > 1 and feeds.get("logits_to_keep", [1])[0] == 1:
            sizes.append(n_new)
        return run(feeds, n_new)

    decoder.run = counted
    return sizes


def test_the_snapshot_is_listed_hashed_and_covers_only_the_left_pad(bundles, fp32):
    manifest = open_bundle(bundles["fp32"]).manifest  # verifies every sha256
    prefix = manifest["model"]["prefix"]
    for name in ("encoder_kv", "conv1_state", "conv2_state", "decoder_kv"):
        assert len(manifest["files"][prefix[name]]["sha256"]) == 64
    cfg = fp32.config
    # mel frame f is centred on sample 160 f of the padded signal: the prompt tokens whose frames all end
    # inside the left pad (and the causal convs' reach) are the snapshot's, none more
    assert 0 < cfg.prefix.tokens < cfg.left_pad_tokens
    last_frame = (cfg.prefix.tokens * cfg.mel_frames_per_token - 1) * cfg.front_end.hop_length
    assert last_frame + cfg.front_end.n_fft // 2 <= fp32.padding.left_pad
    assert sorted(fp32.prefix.decoder_kv) == sorted(cfg.delays_ms)


def test_every_delay_started_from_the_snapshot_gives_the_full_prefills_tokens(fp32, old_bundles, clips):
    # the full prefill is transformers' at 80, 480 and 2400 ms (test_runtime.py, the test below); here the
    # snapshot must give its tokens and logits at every delay the bundle supports
    audio = clips["short"][: 16000 * 3]
    old, cfg = voxedge.load(old_bundles["fp32"]), fp32.config
    for delay_ms in cfg.delays_ms:
        tokens, logits = [], []
        stream = fp32.stream(delay_ms=delay_ms, on_step=lambda tok, lg, *_: (tokens.append(tok), logits.append(lg)))
        sizes = prefills(stream)
        stream.feed(audio)
        stream.close()
        assert sizes == [cfg.left_pad_tokens + delay_ms // cfg.ms_per_token + 1 - cfg.prefix.tokens], delay_ms
        expected_tokens, expected_logits, _ = run_stream(old, audio, delay_ms)
        assert tokens == expected_tokens, f"delay {delay_ms} ms"
        assert np.abs(np.stack(logits) - expected_logits).max() < 1e-4, f"delay {delay_ms} ms"


def test_a_bundle_without_the_snapshot_prefills_the_whole_prompt(old_bundles, fp32, hf_model, clips):
    old = voxedge.load(old_bundles["fp32"])
    assert old.prefix is None and old.config.prefix is None
    stream = old.stream(delay_ms=480)
    sizes = prefills(stream)
    stream.feed(clips["short"])
    assert sizes == [old.config.left_pad_tokens + 480 // 80 + 1]
    expected = generate(hf_model, clips["short"], 2400)[0]
    assert run_stream(old, clips["short"], 2400)[0] == expected == run_stream(fp32, clips["short"], 2400)[0]


def forced_restart_tokens(model, audio, monkeypatch):
    """Tokens and prefill sizes of a stream whose step 21 is forced to end-of-sequence."""
    from voxedge.engines import voxtral_realtime as engine

    original = engine.VoxtralSession._emit

    def emit(self, token, start, end):
        if self._step == 21 and self.resets == 0:
            token = self.cfg.tokens.eos
        return original(self, token, start, end)

    monkeypatch.setattr(engine.VoxtralSession, "_emit", emit)
    tokens = []
    stream = model.stream(delay_ms=480, on_step=lambda tok, *_: tokens.append(tok))
    sizes = prefills(stream)
    for start in range(0, len(audio), 1600):
        stream.feed(audio[start : start + 1600])
    stream.close()
    monkeypatch.setattr(engine.VoxtralSession, "_emit", original)
    assert stream.stats.resets == 1
    return tokens, sizes


def test_a_restart_after_end_of_sequence_starts_from_the_snapshot(fp32, old_bundles, clips, monkeypatch):
    audio = clips["long"][: 16000 * 8]
    tokens, sizes = forced_restart_tokens(fp32, audio, monkeypatch)
    rest = len(fp32.stream(delay_ms=480).engine.prompt) - fp32.prefix.tokens
    assert sizes == [rest, rest]  # the first session and the restarted one each prefill only the rest
    old_tokens, old_sizes = forced_restart_tokens(voxedge.load(old_bundles["fp32"]), audio, monkeypatch)
    assert old_sizes == [rest + fp32.prefix.tokens] * 2
    assert tokens == old_tokens
    assert len(tokens) > 40 and len(set(tokens[22:])) > 3  # the restarted session did real work


@pytest.mark.parametrize("preset", PRESETS[1:])
def test_quantized_presets_agree_with_and_without_the_snapshot(bundles, old_bundles, clips, preset):
    # the snapshot is computed by the bundle's own (quantized) graphs: only the prefill's batching round-off
    # differs from prefilling the whole prompt
    audio = clips["long"]
    with_snapshot = run_stream(voxedge.load(bundles[preset]), audio, 480)[0]
    without = run_stream(voxedge.load(old_bundles[preset]), audio, 480)[0]
    agreement = np.mean([a == b for a, b in zip(with_snapshot, without)])
    print(f"{preset}: {agreement:.4f} of {len(without)} tokens agree with and without the snapshot")
    assert len(with_snapshot) == len(without) and agreement >= 0.98


def test_a_snapshot_of_the_wrong_shape_is_a_bundle_error(bundles, tmp_path):
    copy = shutil.copytree(bundles["int8"], tmp_path / "b")
    manifest = json.loads((copy / MANIFEST).read_text())
    name = manifest["model"]["prefix"]["decoder_kv"]
    table = np.load(copy / name)
    np.save(copy / name, table[:, :, :, 1:])  # one position short of what the prefix leaves visible
    manifest["files"][name] = {"bytes": (copy / name).stat().st_size, "sha256": sha256_file(copy / name)}
    manifest["checksum"] = manifest_checksum(manifest)
    (copy / MANIFEST).write_text(json.dumps(manifest))
    with pytest.raises(BundleError, match="prompt-prefix snapshot"):
        voxedge.load(copy)
