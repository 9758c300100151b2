"""The export's command-line arguments, shared by `python -m export` and `voxedge export` (argparse only,
so that building voxedge's parser imports nothing heavy)."""

from __future__ import annotations

from pathlib import Path

DESCRIPTION = (
    "Turn a Hugging Face checkpoint (Voxtral Mini 4B Realtime, or Whisper) into a voxedge bundle: "
    "ONNX graphs in the chosen precision, the tokenizer and feature tables, and a manifest with "
    "sha256 hashes. Every export ends by running the bundle with voxedge's runtime against "
    "transformers on a sample clip; the report is stored as validation.json and an fp32 bundle "
    "that does not reproduce transformers fails the export."
)
EPILOG = ("Presets: Voxtral int4 (4-bit decoder linears in blocks of 32 values, 8-bit encoder/adapter/LM head), "
          "int4-b64 and int4-b128 (blocks of 64 or 128: fewer bytes per step), int8, fp16, fp32; "
          "Whisper int8, fp32. docs/export.md explains them and the memory the real 4B export needs.")


def add_arguments(parser) -> None:
    parser.add_argument("model", help="checkpoint directory (works offline), or a hub id such as "
                        "mistralai/Voxtral-Mini-4B-Realtime-2602 (needs network access)")
    parser.add_argument("--out", required=True, type=Path, help="bundle directory to create")
    parser.add_argument("--quant", choices=("int4", "int4-b64", "int4-b128", "int8", "fp16", "fp32"),
                        help="weight precision preset (default: int8; fp32 with --target npu)")
    parser.add_argument("--target", default="cpu", choices=("cpu", "npu"),
                        help="cpu: graphs for CPUs and GPUs (onnxruntime's fused kernels, default); npu: fixed shapes "
                        "and standard ops only, for NPUs (QNN, OpenVINO NPU; docs/hardware.md)")
    parser.add_argument("--revision", help="hub revision (branch, tag or commit) when MODEL is a hub id")
    parser.add_argument("--sample-audio", type=Path,
                        help="speech clip for the validation step (default: a built-in synthetic signal)")
    parser.add_argument("--force", action="store_true", help="replace --out if it already exists")
