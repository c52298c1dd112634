"""Schema change detection: catalogue snapshots, diffs to change records, risk, history.

A snapshot is a plain JSON-able dict (see `snapshot_format.py`); everything else works on
those dicts, so a snapshot taken today can be diffed against one saved to a file last year.
"""
