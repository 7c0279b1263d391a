"""Command-line flags made from the config dataclasses: each field's flag takes its type, default, choices
and help text from the field (mtl/config.py), so a new field is a new flag with nothing else to edit."""

import argparse
from dataclasses import fields
from pathlib import Path

from ..config import SHIPPED_CHECKPOINT
from ..errors import MTLError


def flag_name(f) -> str:
    """--field-name, or the flag the field declares (base_model: --model)."""
    return f.metadata.get("flag", "--" + f.name.replace("_", "-"))


def add_config_flags(parser: argparse.ArgumentParser, config_cls, names=None) -> None:
    """One flag per field of `config_cls` (only `names` when given). A bool field is a switch: --name when it
    defaults to False, --no-name when it defaults to True."""
    for f in fields(config_cls):
        if names is not None and f.name not in names:
            continue
        flag, help_text = flag_name(f), f.metadata.get("help")
        if f.type is bool:
            switch, action = (flag.replace("--", "--no-", 1), "store_false") if f.default else (flag, "store_true")
            parser.add_argument(switch, dest=f.name, action=action, help=help_text)
        else:
            choices = f.metadata.get("choices")  # argparse shows them; otherwise the flag names the value
            metavar = None if choices else flag[2:].upper().replace("-", "_")
            parser.add_argument(
                flag,
                dest=f.name,
                type=None if f.type is str else f.type,
                default=f.default,
                choices=choices,
                metavar=metavar,
                help=help_text,
            )


def config_from_args(config_cls, args: argparse.Namespace):
    """The config of parsed flags (made by add_config_flags); the config validates the values."""
    return config_cls(**{f.name: getattr(args, f.name) for f in fields(config_cls)})


def checkpoint_or_shipped(checkpoint: str | None) -> str:
    """--checkpoint, or the shipped model: checkpoints/default beside the source (a checkout) or in the
    working directory (an installed `mtl` run from a checkout)."""
    if checkpoint is not None:
        return checkpoint
    for candidate in (SHIPPED_CHECKPOINT, Path("checkpoints") / "default"):
        if candidate.is_dir():
            return str(candidate)
    raise MTLError("no --checkpoint given and no shipped model in checkpoints/default here; pass --checkpoint DIR")
