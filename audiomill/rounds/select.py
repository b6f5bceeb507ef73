"""Which annotated clips a round re-synthesizes, under a budget of original audio hours.

Re-synthesis cannot cover 10M hours, so the budget goes ``1 - random_share`` to the least
confident clips (``Annotation.min_conf`` ascending: where a wrong label is likeliest) and
``random_share`` to a uniform random draw of the rest (an unbiased estimate of the acceptance
rate). Deterministic: the random draw is seeded by (seed, round); ties break by key.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

LOWEST_CONFIDENCE = "lowest_confidence"
RANDOM = "random"


@dataclass(frozen=True)
class Candidate:
    key: str
    duration_s: float
    min_conf: float


@dataclass(frozen=True)
class Chosen:
    key: str
    duration_s: float
    min_conf: float
    reason: str  # LOWEST_CONFIDENCE | RANDOM
    rank: int


def select(candidates: list[Candidate], budget_s: float, random_share: float, seed: int) -> list[Chosen]:
    """Clips to re-synthesize; total duration stays within ``budget_s`` (whole clips only)."""
    ordered = sorted(candidates, key=lambda c: (c.min_conf, c.key))
    chosen: list[Chosen] = []
    used = 0.0
    confident_budget = budget_s * (1.0 - random_share)
    taken: set[str] = set()
    for c in ordered:
        if used + c.duration_s > confident_budget:
            break
        chosen.append(Chosen(c.key, c.duration_s, c.min_conf, LOWEST_CONFIDENCE, len(chosen)))
        taken.add(c.key)
        used += c.duration_s
    rest = [c for c in sorted(candidates, key=lambda c: c.key) if c.key not in taken]
    order = np.random.default_rng(seed).permutation(len(rest))
    for index in order:
        c = rest[int(index)]
        if used + c.duration_s > budget_s:
            continue
        chosen.append(Chosen(c.key, c.duration_s, c.min_conf, RANDOM, len(chosen)))
        used += c.duration_s
    return chosen
