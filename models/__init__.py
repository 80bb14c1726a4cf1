"""The demo models the product ships (`parts-v1`, `parts-v2`) and their model card, as package data.

Read them through `edge_console.core.paths`, never by a path relative to a checkout: an installed wheel has no
checkout. The training scripts in `training/` are not part of the package.
"""
