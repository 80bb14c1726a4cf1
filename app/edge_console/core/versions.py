"""Model and release versions: ordered as semantic versions, so 2.10.0 > 2.9.0 (as strings they would not be)."""

from __future__ import annotations

from packaging.version import InvalidVersion, Version


def parse_version(text: str) -> Version:
    """`2.0.0`, `v2.0.0`, `2.1.0-rc1` -> Version; ValueError with the accepted forms for anything else."""
    try:
        return Version(text.strip().removeprefix("v"))
    except InvalidVersion:
        raise ValueError(f"{text!r} is not a version; write it as MAJOR.MINOR.PATCH, e.g. 2.1.0") from None


def version_key(text: str) -> tuple[int, Version | str]:
    """A sort key that orders valid versions semantically, after every unparseable one ("unknown" sorts first)."""
    try:
        return (1, parse_version(text))
    except ValueError:
        return (0, text)
