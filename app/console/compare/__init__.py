"""Compare a device's detections with a model run on this laptop, on the very same pixels (issue 5).

fetch.py and session.py never import Qt: `edge-console compare` runs headless from a script.
"""
