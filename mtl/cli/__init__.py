"""Command line: python -m mtl (or `mtl`, installed) with the commands
train (mtl/cli/train.py), eval, predict, encode, export (mtl/cli/inference.py), and sweep, logme,
datacheck (mtl/cli/experiments.py). Every error is one line on stderr and exit status 2."""

import argparse
import os
import sys
from pathlib import Path

from . import experiments, inference, train


def build_parser() -> argparse.ArgumentParser:
    prog = "mtl" if Path(sys.argv[0]).name == "mtl" else "python -m mtl"
    parser = argparse.ArgumentParser(prog=prog, description="Multi-task sentence transformer.")
    sub = parser.add_subparsers(dest="command", required=True)
    for group in (train, inference, experiments):
        group.add_commands(sub)
    return parser


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    from ..errors import MTLError

    try:
        return args.run(args)
    except MTLError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except OSError as e:  # a file or folder that cannot be read or written: still one line, no traceback
        what = f"{e.filename}: " if e.filename else ""
        print(f"error: {what}{e.strerror or e}", file=sys.stderr)
        return 2
    except RecursionError:  # a reader without bounds met input nested thousands deep (mtl.bounded_json has bounds)
        print("error: the input is nested too deeply to read", file=sys.stderr)
        return 2
    except MemoryError:
        print("error: out of memory: the input or the model is too large for this machine", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
