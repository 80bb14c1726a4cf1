"""The console's style sheet, icon and desktop entry, as package data (see `edge_console.core.paths`).

The README's screenshots live here too but are not shipped.
"""
