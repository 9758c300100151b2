"""Multi-step verification (docs/voxtral.md): a decoder call over the step and drafted tokens gives exactly
the tokens of single steps, at every k, delay and feed size, and a live stream that falls behind catches up.

The tiny random model never emits padding, the draft of real speech, so these tests draft the token it emits
most (over half its steps): the same acceptance, rollback and restart paths run as with padding."""

import collections
import threading

import numpy as np
import pytest

import voxedge
from voxedge.errors import OptionError, UnsupportedError
from voxedge.options import StreamOptions
from voxedge.stream import Stream

from .conftest import run_stream


@pytest.fixture(scope="module")
def fp32(bundles):
    return voxedge.load(bundles["fp32"])


def session_tokens(model, audio, delay_ms=480, chunk=1280, draft=None, catch_up=False, **options):
    """(tokens, logits, engine) of a session fed `chunk` samples at a time; `draft` replaces padding as
    the drafted token."""
    tokens, logits = [], []
    engine = model._stream_engine(StreamOptions(delay_ms=delay_ms, **options),
                                  lambda tok, lg, *_: (tokens.append(tok), logits.append(lg)), catch_up=catch_up)
    if draft is not None:
        engine.draft = draft
    stream = Stream(engine)
    for start in range(0, len(audio), chunk):
        stream.feed(audio[start : start + chunk])
    stream.close()
    return tokens, np.stack(logits), engine


def most_emitted(tokens):
    return collections.Counter(tokens).most_common(1)[0][0]


@pytest.mark.parametrize("delay_ms", [80, 480, 2400])
def test_every_k_gives_the_tokens_of_single_steps(fp32, clips, delay_ms):
    audio = clips["long"] if delay_ms == 480 else clips["short"]
    single, single_logits, _ = session_tokens(fp32, audio, delay_ms)  # transformers' tokens (test_runtime.py)
    draft = most_emitted(single)
    for k in (2, 4, 8):
        for chunk in (1280, 16000):
            tokens, logits, engine = session_tokens(fp32, audio, delay_ms, chunk, draft, encoder_batch=8, verify_steps=k)
            assert tokens == single, f"k={k}, {chunk}-sample feeds"
            assert np.abs(logits - single_logits).max() < 1e-4
            # the drafts were used: fewer decoder calls than steps
            assert engine.verified >= 5 and engine.calls + engine.verified == engine.steps - 1


def test_files_verify_padding_drafts_by_default_and_give_the_same_text(fp32, clips):
    from voxedge.options import TranscribeOptions

    assert TranscribeOptions().verify_steps is None and StreamOptions().verify_steps == 1
    assert fp32._stream_engine(StreamOptions(), None).draft == fp32.config.tokens.streaming_pad
    if fp32.decoder_costs is None:  # this machine has not measured the bundle: 4 steps per call
        assert fp32._stream_engine(StreamOptions(verify_steps=None), None).verify_steps == 4
    audio = clips["long"]
    stepped = [s.text for s in fp32.transcribe(audio, sample_rate=16000, verify_steps=1)]
    assert [s.text for s in fp32.transcribe(audio, sample_rate=16000)] == stepped


def test_end_of_sequence_inside_a_verified_call_restarts_where_single_steps_do(fp32, clips, monkeypatch):
    from voxedge.engines import voxtral_realtime as engine_module

    original = engine_module.VoxtralSession._emit

    def emit(self, token, start, end):  # the 22nd token of the first session becomes end-of-sequence
        if self._step == 21 and self.resets == 0:
            token = self.cfg.tokens.eos
        return original(self, token, start, end)

    monkeypatch.setattr(engine_module.VoxtralSession, "_emit", emit)
    audio = clips["long"][: 16000 * 8]
    single, _, one = session_tokens(fp32, audio)
    verified, _, many = session_tokens(fp32, audio, draft=most_emitted(single), encoder_batch=8, verify_steps=8)
    assert one.resets == many.resets == 1
    assert verified == single and many.verified > 0


def test_keyterms_boost_the_same_tokens_with_verification(fp32, clips):
    audio, terms = clips["short"], [voxedge.Keyterm("Kubernetes", 30.0)]  # a weight that changes tokens
    single, _, _ = session_tokens(fp32, audio, keyterms=terms)
    assert single != session_tokens(fp32, audio)[0]
    verified, _, engine = session_tokens(fp32, audio, draft=most_emitted(single), keyterms=terms, encoder_batch=8,
                                         verify_steps=4)
    assert verified == single and engine.verified > 0


@pytest.mark.parametrize("preset", ["fp16", "int8", "int4"])
def test_quantized_presets_mostly_agree_with_single_steps(bundles, clips, preset):
    # batched rows can round differently (int8 activation scales are per call): near-ties may flip
    model = voxedge.load(bundles[preset])
    single = session_tokens(model, clips["long"])[0]
    verified, _, engine = session_tokens(model, clips["long"], draft=most_emitted(single), encoder_batch=8,
                                         verify_steps=4)
    agreement = np.mean([a == b for a, b in zip(single, verified)])
    print(f"{preset}: {agreement:.3f} of {len(single)} tokens agree, {engine.verified} drafts accepted")
    assert len(verified) == len(single) and agreement >= 0.85 and engine.verified > 0


def test_a_stream_fed_faster_than_real_time_catches_up_by_batching(fp32, clips):
    audio = clips["long"]
    draft = most_emitted(session_tokens(fp32, audio)[0])
    paced, _, on_time = session_tokens(fp32, audio, chunk=1280, draft=draft, catch_up=True)
    behind, _, caught_up = session_tokens(fp32, audio, chunk=len(audio), draft=draft, catch_up=True)
    assert behind == paced
    assert on_time.verified == 0 and caught_up.verified > len(paced) // 5


def test_live_events_report_the_backlog(fp32, clips):
    audio = clips["long"][: 16000 * 8]
    live = voxedge.LiveStream(fp32.stream(delay_ms=480), read_ms=80)
    feed, calls = live.stream.feed, []
    entered = [threading.Event(), threading.Event()]
    release = threading.Event()

    def held_second_feed(block, rate):  # the worker is held up once, while 5 s of audio pile up in the ring
        calls.append(block)
        if len(calls) <= 2:
            entered[len(calls) - 1].set()
        if len(calls) == 2:
            release.wait(10)
        return feed(block, rate)

    live.stream.feed = held_second_feed
    live.push(audio[:32000])
    assert entered[0].wait(10)
    live.push(audio[32000:48000])
    assert entered[1].wait(10)
    live.push(audio[48000:])
    release.set()
    live.close()
    events = list(live.events())
    assert max(e.backlog for e in events) == pytest.approx(5.0, abs=0.1)
    assert events[-1].backlog == 0.0


def test_verify_steps_is_checked_and_only_voxtral_takes_it(fp32, whisper_bundles):
    with pytest.raises(OptionError, match="verify_steps"):
        fp32.stream(verify_steps=0)
    with pytest.raises(OptionError, match="verify_steps"):
        fp32.transcribe(np.zeros(16000, np.float32), verify_steps=33)
    with pytest.raises(UnsupportedError, match="verify_steps"):
        voxedge.load(whisper_bundles["int8"]).stream(verify_steps=4)


def test_a_bundle_exported_before_verification_runs_step_by_step(bundles, clips, tmp_path):
    import json
    import shutil

    import onnx
    from onnx import numpy_helper

    from voxedge.bundle import MANIFEST, manifest_checksum, sha256_file

    # the decoder as exported before logits_to_keep: that input a constant 1 (the last position's logits)
    old = shutil.copytree(bundles["fp32"], tmp_path / "old")
    graph = onnx.load(old / "decoder_step.onnx", load_external_data=False)
    keep = next(i for i in graph.graph.input if i.name == "logits_to_keep")
    graph.graph.input.remove(keep)
    graph.graph.initializer.append(numpy_helper.from_array(np.ones(1, np.int64), "logits_to_keep"))
    onnx.save(graph, old / "decoder_step.onnx")
    manifest = json.loads((old / MANIFEST).read_text())
    manifest["files"]["decoder_step.onnx"] = {"bytes": (old / "decoder_step.onnx").stat().st_size,
                                              "sha256": sha256_file(old / "decoder_step.onnx")}
    manifest["checksum"] = manifest_checksum(manifest)
    (old / MANIFEST).write_text(json.dumps(manifest))

    model = voxedge.load(old)
    assert not model.verifies
    audio = clips["short"]
    tokens, _, engine = session_tokens(model, audio, draft=0, encoder_batch=8, verify_steps=8)
    assert engine.verify_steps == 1 and engine.verified == 0
    assert tokens == run_stream(voxedge.load(bundles["fp32"]), audio, 480)[0]


# -- k chosen from this machine's measured costs (voxedge/engines/draft_policy.py) -------------------------

INT4_COSTS = {1: 1.0, 2: 1.16, 4: 1.62, 8: 2.66}  # real-size int4 on the reference machine (docs/voxtral.md)


def test_expected_tokens_per_call_match_a_simulation_of_padding_runs():
    from voxedge.engines.draft_policy import expected_tokens

    rng = np.random.default_rng(0)
    for first, rest in ((0.0, 0.0), (0.5, 0.73), (0.3, 0.9), (0.9, 0.5)):
        for k in (1, 2, 4, 8):
            # a token sequence: the call's first token is the draft with chance `first`, each later one after the
            # draft with chance `rest`; a call keeps its first token and each one whose predecessor was the draft
            drafts = np.column_stack([rng.random(20000) < first, rng.random((20000, k - 1)) < rest])[:, : k - 1]
            accepted = 1 + np.cumprod(drafts, axis=1).sum(axis=1)
            assert abs(accepted.mean() - expected_tokens(k, first, rest)) < 0.05


def test_the_policy_takes_the_cheapest_k_per_token_and_follows_the_stream():
    from voxedge.engines.draft_policy import DraftPolicy

    policy = DraftPolicy(INT4_COSTS, limit=32)
    # speech's statistics (draft after draft 0.73, after text 0.5), per token: after the draft k = 4 costs
    # 1.62 / 2.65 against 1.16 / 1.73 (k = 2) and 2.66 / 3.39 (k = 8); after text 1.62 / 2.13 against 1.16 / 1.5
    assert policy.steps(True) == 4 and policy.steps(False) == 4
    for _ in range(200):  # a stream where the draft never follows text
        policy.observe(False, False)
    assert policy.steps(False) == 1 and policy.steps(True) == 4
    for _ in range(2000):  # and nearly always follows itself
        policy.observe(True, True)
    assert policy.after_draft.value > 0.9 and policy.steps(True) == 8
    assert DraftPolicy(INT4_COSTS, limit=2).steps(True) == 2  # never past the session's bound
    flat = DraftPolicy({1: 1.0, 2: 1.03, 4: 1.18, 8: 1.41}, limit=32)  # int8's flatter costs
    assert flat.steps(True) == 8  # 1.41 / 3.39 < 1.18 / 2.65


def test_measured_costs_are_kept_per_machine_and_bundle_and_steer_sessions(bundles, clips, tmp_path, monkeypatch,
                                                                           capsys):
    import json

    from voxedge.cli import main
    from voxedge.device_profile import path

    monkeypatch.setenv("VOXEDGE_HOME", str(tmp_path))
    assert voxedge.load(bundles["fp32"]).decoder_costs is None
    assert main(["bench", "--device", "--bundle", str(bundles["fp32"]), "--json"]) == 0
    measured = json.loads(capsys.readouterr().out)["device"]["bundles"][str(bundles["fp32"])]
    assert set(measured["decoder_call_cost_by_positions"]) == {"1", "2", "4", "8"}
    assert path().is_file() and "verify" in measured["text"]
    model = voxedge.load(bundles["fp32"])
    assert set(model.decoder_costs) == {1, 2, 4, 8} and model.decoder_costs[1] == 1.0
    assert voxedge.load(bundles["int8"]).decoder_costs is None  # another bundle: not measured

    audio = clips["long"]
    single, _, _ = session_tokens(model, audio)
    model.decoder_costs.update(INT4_COSTS)  # the policy's choice should not hang on this machine's noise
    tokens, _, engine = session_tokens(model, audio, draft=most_emitted(single), encoder_batch=8, verify_steps=None)
    assert engine.policy is not None and tokens == single
    assert engine.verified > 0 and engine.calls + engine.verified == engine.steps - 1
    padded, _, engine = session_tokens(model, audio, encoder_batch=8, verify_steps=None)  # the tiny model never pads
    assert padded == single and engine.policy.steps(False) == 1 and engine.verified == 0


def test_bench_bundle_needs_device_and_a_voxtral_bundle(bundles, capsys):
    from voxedge.cli import main

    assert main(["bench", "--bundle", str(bundles["fp32"])]) == 1
    assert "--bundle goes with --device" in capsys.readouterr().err
