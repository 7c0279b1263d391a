"""Text a visitor typed or uploaded, made safe for the model: odd characters replaced, empty or
unreadable input refused, very long input cut (with a note saying so)."""

import re
import unicodedata

from .context import MAX_SENTENCE_CHARS, UIError

_SURROGATES = re.compile("[\ud800-\udfff]")


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
    raw = "" if text is None else str(text)
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
