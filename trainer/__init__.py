"""Offline side of stream-od: load KDD-style data, fit a detector, evaluate, publish an artifact.

``trainer`` uses ``stream_od``'s detectors and artifact format; ``stream_od`` never imports
``trainer`` (except the top-level CLI, which dispatches ``train``/``evaluate`` here).
"""
