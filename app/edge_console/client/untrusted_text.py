"""Text that came from a device, made safe to show (Qt-free).

Everything a device says (its name, model, health reasons, error details) is untrusted input. Two rules keep it
honest on screen:

- it is always shown as plain text: escaped where a widget would read HTML (tooltips, rich labels, the details
  panel), never interpreted, so `<h1>BIG</h1><a href=…>` is shown as those characters, not as a heading and a link;
- control and bidirectional-formatting characters are made visible instead of acting: a newline would split a table
  row, a NUL truncate a label, and a right-to-left override (U+202E) reverse what follows it, making
  "photo\u202egnp.exe" read as "photoexe.png". Control characters become their Unicode control pictures (␀, ␊, ␛),
  other invisible formatting characters a visible ⟨U+202E⟩.

Zero-width joiner and non-joiner stay: scripts such as Persian and emoji sequences need them, and they reorder
nothing. Text printed to a terminal by the command-line tools is escaped by `core.terminal_text.for_terminal`
instead (\x1b, \u202e: what a terminal user can read and copy).
"""

from __future__ import annotations

import html
import unicodedata
from collections.abc import Iterable

KEPT_FORMAT_CHARACTERS = frozenset("\u200c\u200d")  # ZWNJ, ZWJ
_MADE_VISIBLE_CATEGORIES = frozenset({"Cc", "Cf", "Zl", "Zp", "Cs"})


def visible_char(ch: str) -> str:
    code = ord(ch)
    if code < 0x20:
        return chr(0x2400 + code)  # the Control Pictures block: ␀ … ␟
    if code == 0x7F:
        return "\u2421"  # ␡
    return f"\u27e8U+{code:04X}\u27e9"


def visible_text(raw: object, limit: int | None = None) -> str:
    """`raw` as one line of plain text with every control and bidi character made visible; at most `limit`
    characters (an ellipsis marks the cut). Idempotent: visible text stays as it is."""
    text = raw if isinstance(raw, str) else ("" if raw is None else str(raw))
    if limit is not None:
        text = text[: limit * 2]  # room for what becomes longer when made visible; cut exactly below
    out = []
    for ch in text:
        if ch not in KEPT_FORMAT_CHARACTERS and unicodedata.category(ch) in _MADE_VISIBLE_CATEGORIES:
            out.append(visible_char(ch))
        else:
            out.append(ch)
    shown = "".join(out)
    if limit is not None and len(shown) > limit:
        shown = shown[: max(0, limit - 1)] + "…"
    return shown


def escaped(raw: object, limit: int | None = None) -> str:
    """For a widget that reads HTML: the visible text, escaped, so it is shown as typed and never interpreted."""
    return html.escape(visible_text(raw, limit), quote=True)


def plain_tooltip(lines: Iterable[object]) -> str:
    """A tooltip of untrusted lines. Qt guesses whether a tooltip is HTML (`Qt::mightBeRichText`), so plain text
    that looks like markup would be rendered; an explicit HTML tooltip whose every line is escaped cannot be."""
    return "<p style='white-space:pre-wrap'>" + "<br>".join(escaped(line) for line in lines) + "</p>"
