"""The device's frame pipeline: source -> capture thread -> inference thread -> frame hub, and its counters.

    sources.py      camera, video file, RTSP/HTTP stream or the synthetic scene
    capture.py      the capture thread: reads as fast as the source delivers
    latest_slot.py  the one-item mailbox between threads (the newest frame wins)
    inference.py    the inference thread: the detector on the newest frame, a model swapped while running
    frame_hub.py    the asyncio side: the newest inferred frame and its stream messages
    stats.py        counters the threads update, read as one snapshot by telemetry and health
"""
