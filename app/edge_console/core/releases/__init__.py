"""Releases as both sides read them: the file format, the tar stream, TUF trust and the checks around it.

    file_format.py        the model bundle and the release file: layout, manifest, limits
    tar_stream.py         a push parser for uncompressed tar, fed as bytes arrive
    stream.py             unpacking and checking a release in one pass while it arrives
    trust.py              release trust with python-tuf: roles, keys, checking a delivered release
    preverify.py          a TUF check against a copy of the trust, before install changes anything
    checks.py             what TUF does not check by itself, and refusals in words
    metadata_versions.py  snapshot and timestamp versions: the order of deliveries
    golden_check.py       the golden-set check on the device that will run the model
    compatibility.py      whether a release can run on a device: one rule for the device and the console
"""
