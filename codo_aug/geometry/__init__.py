"""Pure geometry: boxes, crops and placements. No I/O, no randomness."""
