"""Compare a device's detections with a model run on this laptop, on the very same pixels (issue 5).

Qt-free (checked by import-linter), so `edge-console compare` runs headless from a script:
    fetch.py           GET /v1/info and the lossless /v1/frame (header with the device's detections + BMP)
    session.py         CompareSession: device + local model as coroutines, one frame or a continuous run
    pipeline.py        the continuous run: frame N+1 fetched while N is inferred, results paired with their frames
    cli.py             `edge-console compare --device HOST:PORT [--model] [--frames] [--json] [--save-frames]`,
                       the same coroutines under `asyncio.run`
    saved_frames.py    a folder of frames exactly as the device sent them, to compare again later
    worker.py          the panel's requests, in order, on the console's network loop and task pool
    hard_frames.py     the bounded list of frames below the agreement threshold, and their YOLO labels

The Compare panel (Qt), a tab of the main window opened from a device's preview (Compare…, Ctrl+K):
    panel.py           behaviour: requests to the worker, runs, continuous mode, hard frames, export
    panel_layout.py    its widgets and their arrangement
    frame_view.py      one view of a compared frame: device, local, or the agreement overlay
    overlay_painter.py the four kinds of agreement (colour and line style), their boxes, the legend
    stats_view.py      agreement and latency numbers
    agreement_chart.py F1 over time with the threshold line (pyqtgraph)
    export_dialog.py   hard frames -> YOLO dataset on the task pool, with a cancellable progress dialog
"""
