"""Compare a device's detections with a model run on this laptop, on the very same pixels (issue 5).

The engine is Qt-free and lives in client/compare/ (fetching, the session, the continuous pipeline, the worker,
saved and hard frames, the headless `edge-console compare`); this folder is its window.

The Compare panel (Qt), a tab of the main window opened from a device's preview (Compare…, Ctrl+K):
    panel.py           behaviour: requests to the worker, runs, continuous mode, hard frames, export
    panel_layout.py    its widgets and their arrangement
    frame_view.py      one view of a compared frame: device, local, or the agreement overlay
    overlay_painter.py the four kinds of agreement (colour and line style), their boxes, the legend
    stats_view.py      agreement and latency numbers
    agreement_chart.py F1 over time with the threshold line (pyqtgraph)
    export_dialog.py   hard frames -> YOLO dataset on the task pool, with a cancellable progress dialog
"""
