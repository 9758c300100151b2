"""`voxedge eval`: WER, CER and agreement of bundles, beside the reference implementation run on the same clips
(transformers for the tiny Voxtral model, faster-whisper for Whisper tiny.en)."""

import json

import pytest

from voxedge.cli import main


def evaluate(capfd, *argv) -> dict:
    assert main(["eval", *map(str, argv), "--json"]) == 0
    return json.loads(capfd.readouterr().out)


def test_voxtral_fp32_scores_what_transformers_scores_and_int8_agrees_mostly(bundles, tiny_checkpoint, capfd):
    pytest.importorskip("torch")
    result = evaluate(capfd, bundles["fp32"], bundles["int8"], "--reference", tiny_checkpoint, "--limit", 4)
    fp32, int8 = result["bundles"][str(bundles["fp32"])], result["bundles"][str(bundles["int8"])]
    assert result["clips"] == 4 and result["audio_seconds"] > 10
    # the random model's text is nonsense, but token for token transformers' (tests/voxtral/test_runtime.py)
    assert (fp32["wer"], fp32["cer"]) == (result["reference"]["wer"], result["reference"]["cer"])
    assert fp32["preset"] == "fp32" and "token_agreement" not in fp32
    assert int8["compared_with"] == str(bundles["fp32"]) and 0.85 <= int8["token_agreement"] < 1.0
    assert 0.0 <= int8["word_agreement"] <= 1.0 and int8["rtf"] > 0


def test_whisper_scores_beside_faster_whisper(whisper_bundles, ct2_dir, capfd):
    result = evaluate(capfd, whisper_bundles["fp32"], whisper_bundles["int8"], "--reference", ct2_dir, "--limit", 8)
    fp32, int8 = result["bundles"][str(whisper_bundles["fp32"])], result["bundles"][str(whisper_bundles["int8"])]
    assert fp32["wer"] < 0.25 and abs(fp32["wer"] - result["reference"]["wer"]) <= 0.01
    assert int8["word_agreement"] >= 0.8 and "token_agreement" not in int8  # 0.913 measured


@pytest.mark.parametrize("argv", [["nowhere"], ["whisper-tiny.en", "--limit", "0"]])
def test_a_user_mistake_is_one_error_line(tmp_path, monkeypatch, capsys, argv):
    monkeypatch.chdir(tmp_path)
    assert main(["eval", *argv]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("voxedge: error:")
