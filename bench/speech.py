"""Made-up speech: utterances of 12 words drawn from a vocabulary of 20,000 with Zipf
frequencies (the k-th most frequent word is said k times less often than the first),
as speech has them, so that a word's share of utterances is known in advance."""

from __future__ import annotations

import random
from collections.abc import Callable
from itertools import accumulate

VOCABULARY_SIZE = 20_000
WORDS_PER_UTTERANCE = 12

_SYLLABLES = tuple(c + v for c in "bdfgklmnprstvz" for v in "aeiou")


def _vocabulary() -> tuple[list[str], list[float]]:
    """Made-up words of two or three syllables, most frequent first, and each one's
    chance to be any one word of an utterance."""
    rng = random.Random(20)
    words: dict[str, None] = {}
    while len(words) < VOCABULARY_SIZE:
        words["".join(rng.choices(_SYLLABLES, k=rng.choice((2, 3))))] = None
    weights = [1 / rank for rank in range(1, VOCABULARY_SIZE + 1)]
    total = sum(weights)
    return list(words), [weight / total for weight in weights]


WORDS, CHANCES = _vocabulary()
_CUMULATIVE = list(accumulate(CHANCES))


def share(chance: float, places: int = WORDS_PER_UTTERANCE) -> float:
    """The share of utterances that hold, at least once in `places` places, a thing
    with this chance at each place."""
    return 1 - (1 - chance) ** places


def spoken(seed: int = 12) -> Callable[[int], str]:
    """The text of the n-th utterance, asked for in order."""
    rng = random.Random(seed)

    def text(n: int) -> str:
        del n  # the words come from the generator's sequence
        return " ".join(rng.choices(WORDS, cum_weights=_CUMULATIVE, k=WORDS_PER_UTTERANCE))

    return text
