"""Bounded JSON reading: every JSON document the library reads (a line of a data file, a checkpoint's mtl.json)
goes through parse_json, so that no file, however it is made, can exhaust Python's parser.

Python's parser recurses once per level of nesting (RecursionError past ~1,000 levels) and converts an
integer's digits in quadratic time (ValueError past 4,300 digits); both are refused here before it runs, with
the line, as one ValueError the callers turn into a DataError or CheckpointError naming the file."""

import json
import re

import numpy as np

MAX_JSON_DEPTH = 32  # arrays and objects inside each other: mtl.json uses 4, a data row 1
MAX_JSON_NUMBER_DIGITS = 100  # digits in one number: a 64-bit integer has 20
MAX_JSON_VALUES = 1_000_000  # items of all arrays and objects together in one document

_JSON_STRING = re.compile(r'"(?:[^"\\\n]|\\.)*"')
_NUMBER_RUN = re.compile(rf"[-+.eE0-9]{{{MAX_JSON_NUMBER_DIGITS + 1},}}")  # may be a number over the bound


class JSONLimitError(ValueError):
    """Valid JSON, or near enough, over one of the bounds above: `msg` says which, `lineno` where."""

    def __init__(self, msg: str, lineno: int):
        super().__init__(f"line {lineno}: {msg}")
        self.msg, self.lineno = msg, lineno


def parse_json(text: str):
    """json.loads within the bounds above. Raises json.JSONDecodeError for text that is not JSON and
    JSONLimitError for JSON over a bound (both ValueErrors with .msg and .lineno), never RecursionError."""
    _check_json_bounds(text)
    return json.loads(text)


def _check_json_bounds(text: str) -> None:
    brackets = text.count("[") + text.count("{")
    if brackets <= MAX_JSON_DEPTH and text.count(",") < MAX_JSON_VALUES and not _NUMBER_RUN.search(text):
        return  # counted over the strings too, so nothing can be over a bound: the usual case, in C only
    # strings blanked to spaces of the same length, so what is left is structure and positions keep their lines
    blank = _JSON_STRING.sub(lambda m: " " * len(m.group()), text)
    code = blank.encode()  # brackets and commas are single bytes; no other character contains those bytes
    chars = np.frombuffer(code, dtype=np.uint8)
    opens = (chars == ord("[")) | (chars == ord("{"))
    closes = (chars == ord("]")) | (chars == ord("}"))
    depth = np.cumsum(opens.astype(np.int32) - closes.astype(np.int32), dtype=np.int32)
    deep = np.flatnonzero(depth > MAX_JSON_DEPTH)
    if deep.size:
        raise JSONLimitError(f"nested deeper than {MAX_JSON_DEPTH} levels", code.count(b"\n", 0, deep[0]) + 1)
    for run in _NUMBER_RUN.finditer(blank):
        digits = sum(c.isdigit() for c in run.group())
        if digits > MAX_JSON_NUMBER_DIGITS:
            where = blank.count("\n", 0, run.start()) + 1
            raise JSONLimitError(f"a number of {digits} digits, over the limit of {MAX_JSON_NUMBER_DIGITS}", where)
    commas = np.flatnonzero(chars == ord(","))
    if commas.size >= MAX_JSON_VALUES:
        where = code.count(b"\n", 0, commas[MAX_JSON_VALUES - 1]) + 1
        raise JSONLimitError(f"more than {MAX_JSON_VALUES:,} values", where)
