"""What a visitor sent, checked before use: every value of the type its handler expects (expect), and
text made safe for the model: odd characters replaced, empty or unreadable input refused, very long
input cut (with a note saying so).

The JSON API lets a caller send any value for any input (a number or a list as a model name, an
object as a sentence): each handler checks its inputs with expect, so a wrong type gets a one-line
message of its own instead of an exception deep inside."""

import re
import unicodedata

from mtl.errors import MTLError

MAX_SENTENCE_CHARS = 1000  # per sentence; the encoder reads at most 128 tokens (about 100 words) anyway
MAX_INPUT_CHARS = 200_000  # a whole text box


class UIError(MTLError):
    """Something the user can fix; its message is shown in the app."""


_SURROGATES = re.compile("[\ud800-\udfff]")

# kind -> (accepted Python types, the words for it); bool is never a number, though Python says it is
KINDS = {
    "text": ((str,), "text"),
    "number": ((int, float), "a number"),
    "whole number": ((int, float), "a whole number"),
    "list of text": ((list, tuple), "a list of text"),
    "true/false": ((bool,), "true or false"),
}


def describe(value) -> str:
    """What a value is, in the words of a message: "a number", "a list", "an object"..."""
    if value is None:
        return "nothing"
    if isinstance(value, bool):
        return "true/false"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, str):
        return "text"
    if isinstance(value, (list, tuple)):
        return "a list"
    if isinstance(value, dict):
        return "an object"
    return f"a {type(value).__name__}"


def expect(value, kind: str, what: str, optional: bool = False):
    """`value` if it is of `kind` (one of KINDS; None too when `optional`), else a UIError that says
    what `what` must be and what came instead. A whole number comes back as an int (JSON and Gradio's
    Number send 3.0 for 3); each item of a "list of text" is checked too."""
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {', '.join(KINDS)}, not {kind!r}")
    types, words = KINDS[kind]
    if value is None and optional:
        return None
    if not isinstance(value, types) or (isinstance(value, bool) and kind != "true/false"):
        raise UIError(f"{what} must be {words}, not {describe(value)}.")
    if kind == "whole number":
        if not float(value).is_integer():
            raise UIError(f"{what} must be {words}, not {value:g}.")
        return int(value)
    if kind == "list of text":
        wrong = [v for v in value if not isinstance(v, str)]
        if wrong:
            raise UIError(f"{what} must be {words}; one item is {describe(wrong[0])}.")
        return list(value)
    return value


def clean_text(text, max_chars: int | None = None) -> str:
    """Text as the model can take it: lone UTF-16 surrogates (possible through the JSON API) replaced,
    control characters turned into spaces (tabs and line breaks kept). With max_chars, only the first
    2 * max_chars characters are looked at, so a huge paste costs nothing."""
    text = "" if text is None else str(text)
    if max_chars is not None:
        text = text[: max_chars * 2]
    text = _SURROGATES.sub("\ufffd", text)
    return "".join(" " if unicodedata.category(c) == "Cc" and c not in "\n\t" else c for c in text)


def readable(text: str) -> bool:
    """True when the text has a letter, digit, punctuation mark or symbol (emoji included), not only
    spaces, control and formatting characters (zero-width spaces, byte-order marks, direction marks)."""
    return any(unicodedata.category(c)[0] in "LNPS" for c in text)


def clean_sentence(text, max_chars: int = MAX_SENTENCE_CHARS) -> tuple[str, list[str]]:
    """One sentence to predict: refuse empty or unreadable input, shorten very long input (with a note)."""
    raw = expect(text, "text", "The sentence", optional=True) or ""
    if not raw.strip():
        raise UIError("Type a sentence first: the text box is empty.")
    text, notes = clean_text(raw, max_chars).strip(), []
    if not readable(text):
        raise UIError(
            "The text has no letters, digits or symbols, only spaces, control or invisible formatting "
            "characters: type a sentence."
        )
    lines = raw.count("\n") + 1
    if lines > 3:
        notes.append(
            f"The text has {lines:,} lines; Predict reads it as one text. For one prediction per line, "
            "upload the lines as a .txt file under Batch."
        )
    if len(raw.strip()) > max_chars:
        notes.append(
            f"The text has {len(raw.strip()):,} characters; only the first {max_chars:,} are used "
            "(the model reads about the first 100 words)."
        )
        text = text[:max_chars]
    return text, notes


def shorten(text: str, n: int) -> str:
    """At most n characters, ending in "…" when cut (for labels and tooltips)."""
    return text if len(text) <= n else text[: n - 1].rstrip() + "…"
