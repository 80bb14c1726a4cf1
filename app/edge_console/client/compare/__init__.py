"""The compare engine, Qt-free: the device's frame, the laptop's model on the same pixels, and what they agree on.

    fetch.py        one frame and its detections from a device
    session.py      a comparison session: frames, results, statistics
    pipeline.py     the laptop's model run on a device frame
    worker.py       the work off the GUI thread, cancellable
    saved_frames.py `.edgeframe` files read and written
    hard_frames.py  the frames where device and laptop disagree, kept for retraining
    cli.py          `edge-console compare` (headless)
"""
