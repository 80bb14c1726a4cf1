"""Text another machine sent (a device's name, a console's name, an error's detail), made safe to print to a terminal.

A terminal acts on some characters instead of showing them: ESC starts a sequence that can recolour, move the
cursor, rewrite the window title or, on some terminals, answer back as if typed; CR returns to the start of the line
so what follows overwrites what the reader thought they saw; BEL rings. Bidirectional controls (U+202E, U+2066...)
reorder what follows, so "photo\\u202egnp.exe" reads "photoexe.png". Each such character is printed as the escape a
programmer would type for it (\\x1b, \\r, \\u202e), so the reader sees that it was there and nothing acts on it.

Line breaks are escaped too unless the caller keeps them (a CSV or a listing printed as several lines): one
device-provided field never spans two lines. Zero-width joiner and non-joiner stay (emoji and scripts such as Persian
need them and they reorder nothing). A lone surrogate (JSON may carry "\\ud800") is escaped as well: printed as is,
it would raise UnicodeEncodeError. Pure text, shared by every command-line tool (edge-console, edge-agent).
"""

from __future__ import annotations

import unicodedata

KEPT_FORMAT_CHARACTERS = frozenset("\u200c\u200d")  # ZWNJ, ZWJ
# Cc: C0 controls, DEL, C1 controls (U+0080-U+009F: 8-bit ESC/CSI for some terminals). Cf: format characters, among
# them every bidirectional control (U+200E/F, U+061C, U+202A-202E, U+2066-2069). Zl/Zp: line and paragraph
# separators. Cs: lone surrogates.
_ESCAPED_CATEGORIES = frozenset({"Cc", "Cf", "Zl", "Zp", "Cs"})
_SHORT_ESCAPES = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def _escape(ch: str) -> str:
    if ch in _SHORT_ESCAPES:
        return _SHORT_ESCAPES[ch]
    code = ord(ch)
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def for_terminal(raw: object, limit: int | None = None, *, keep_newlines: bool = False) -> str:
    """`raw` with every control, bidirectional and other invisible formatting character shown as its escape;
    at most `limit` characters of `raw` are kept (an ellipsis marks the cut). `keep_newlines`: "\\n" stays a line
    break (for text printed as several lines); a CR never does."""
    text = raw if isinstance(raw, str) else ("" if raw is None else str(raw))
    cut = limit is not None and len(text) > limit
    if cut:
        text = text[: max(0, limit - 1)]
    out = []
    for ch in text:
        if ch == "\n" and keep_newlines:
            out.append(ch)
        elif ch not in KEPT_FORMAT_CHARACTERS and unicodedata.category(ch) in _ESCAPED_CATEGORIES:
            out.append(_escape(ch))
        else:
            out.append(ch)
    return "".join(out) + ("…" if cut else "")
