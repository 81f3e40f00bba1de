"""LossTerm: which term of the objective a loss is (its pooling branch and the views it compares)."""

from typing import NamedTuple, TypeVar

T = TypeVar("T")


class LossTerm(NamedTuple):
    """A loss term: `branch` ('size', 'p2'..'p5' in `all` mode, 'image') and `views` (a pair (a, b), or one
    view j for the supervised control). Weights, metrics and level figures read the fields; str() is the
    name the term has in metrics.jsonl: '0-1' for the size branch, 'p3/0-2', 'image/0-1', 'p2/0'."""

    branch: str
    views: tuple[int, ...]

    def __str__(self) -> str:
        views = "-".join(map(str, self.views))
        return views if self.branch == "size" else f"{self.branch}/{views}"


def named(losses: dict[LossTerm, T]) -> dict[str, T]:
    """The terms under their metrics.jsonl names."""
    return {str(k): v for k, v in losses.items()}
