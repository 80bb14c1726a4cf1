"""Views: each takes the state it shows in its constructor, connects to its signals and only draws.

    device_table.py      the fleet as a sortable, filterable table with a status colour that reads at a glance
    grid_view.py         several devices' previews at once, sharing one set of overlay controls
    details_panel.py     everything a device reports about itself, plus what the console learnt (clock, errors)
    charts.py            telemetry charts (pyqtgraph): one device or several overlaid, over a chosen window
    preview_panel.py     one device's full preview: controls on top (and the way into Compare), the canvas below
    preview_canvas.py    the live preview: the newest frame with its own detections; pause, step, zoom and pan
    preview_controls.py  the bar above a preview or grid: threshold, class toggles, pause/step/zoom
    preview_text.py      what a preview says in words: its keys, its information block, why it is not live
    overlay.py           drawing a frame and its detections: filter settings and the painter, apart from widgets
    label_placement.py   where box labels and text blocks go so that none hides another
    add_device_dialog.py adding a device by address, and why a device may not appear by itself
    pair_dialog.py       pairing with a device by its one-time code
    notice_bar.py        what the user must know and may have to act on, across the top until read
    shortcuts_dialog.py  Help ▸ Keyboard shortcuts (F1), generated from the window's actions and the preview's keys
    text_fit.py          dialogs that grow with their word-wrapped text instead of clipping it
    formatting.py        small text helpers shared by the views ("3 min ago" said the same way everywhere)
"""
