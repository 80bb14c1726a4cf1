"""Tests of the Qt-free client package (app/edge_console/client/): sessions, discovery, registry, store, tasks."""
