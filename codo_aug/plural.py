"""Counts in messages: '1 sample', '2 samples'."""


def plural(n: int, word: str) -> str:
    """`n` and `word`, with an 's' unless `n` is 1."""
    return f"{n} {word}{'' if n == 1 else 's'}"
