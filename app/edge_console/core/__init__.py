"""Pure logic shared by every program: detections, the ONNX detector, matching, synthetic scenes.

Never imports Qt or a network library (checked by tests/unit/test_boundaries.py).
"""
