"""Deterministic rendering: (pixels, recipe draws) -> pixels, boxes and RoIs."""
