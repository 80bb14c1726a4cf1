"""Synthetic industrial-inspection scenes with exact ground truth: the demo's camera and the tests' golden frames.

    conveyor.py  parts riding a conveyor belt, with ground-truth boxes
    parts.py     drawing one part (bolt, nut, washer, bracket) as a shaded sprite
"""
