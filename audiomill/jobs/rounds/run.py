"""``audiomill round run``: rounds one after another, each phase by phase, resumable.

A round's models are pinned in ``round.json`` when it starts; a resumed round reuses them and
starts at its first phase without a marker. A dataset's first round is a bootstrap (round 0)
when the registry has no production heads yet: it trains them on the seed set only.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from audiomill.execution.ray_session import RaySettings, ray_session
from audiomill.jobs.rounds.context import RoundContext
from audiomill.jobs.rounds.models import Pinned, pin
from audiomill.jobs.rounds.phases import BOOTSTRAP_SKIPS, PHASE_FUNCTIONS
from audiomill.models.registry import ModelRegistry
from audiomill.rounds.config import RoundConfig
from audiomill.rounds.store import PHASES, ROUND_JSON, RoundStore, read_json, round_numbers, write_json

logger = logging.getLogger(__name__)
PhaseCallback = Callable[[int, str, dict[str, Any]], None]


@dataclass(frozen=True)
class RoundOutcome:
    number: int
    ran: tuple[str, ...]  # phases this call ran (resumed rounds skip finished ones)
    summaries: dict[str, dict[str, Any]] = field(default_factory=dict)


def _finished(dataset: str, number: int) -> bool:
    return RoundStore(dataset, number).next_phase() is None


def _open_round(dataset: str, number: int, cfg: RoundConfig) -> RoundContext:
    store = RoundStore(dataset, number)
    uri = store.uri(ROUND_JSON)
    try:
        pinned = Pinned(**read_json(uri)["models"])
    except FileNotFoundError:
        pinned = pin(cfg)
        write_json(uri, {"round": number, "models": pinned.to_json(), "config": cfg.model_dump(mode="json")})
    return RoundContext(dataset, number, cfg, pinned, store, ModelRegistry(cfg.registry))


def run_round(ctx: RoundContext, on_phase: PhaseCallback | None = None,
              stop_after: str | None = None) -> RoundOutcome:
    """Every phase of one round not yet done; ``stop_after`` ends early (tests: a killed round)."""
    ran, summaries = [], {}
    for phase in PHASES:
        if ctx.store.done(phase):
            continue
        started = time.perf_counter()
        if ctx.bootstrap and phase in BOOTSTRAP_SKIPS:
            summary: dict[str, Any] = {"skipped": "bootstrap: no heads yet, train on the seed set"}
        else:
            summary = PHASE_FUNCTIONS[phase](ctx)
        summary["wall_s"] = round(time.perf_counter() - started, 3)
        ctx.store.mark(phase, summary)
        ran.append(phase)
        summaries[phase] = summary
        if on_phase:
            on_phase(ctx.number, phase, summary)
        if phase == stop_after and "skipped" not in summary:
            break
    return RoundOutcome(ctx.number, tuple(ran), summaries)


def run_rounds(dataset: str, cfg: RoundConfig, rounds: int, on_phase: PhaseCallback | None = None,
               stop_after: str | None = None) -> list[RoundOutcome]:
    """Finish an interrupted round, then run ``rounds`` more full rounds; a bootstrap round 0
    (first heads from the seed set) runs first when the registry has none and does not count."""
    settings = RaySettings(address=cfg.address, num_cpus=cfg.num_cpus)
    outcomes: list[RoundOutcome] = []
    with ray_session(settings) if cfg.runner == "ray" else contextlib.nullcontext():
        numbers = round_numbers(dataset)
        todo = [n for n in numbers if not _finished(dataset, n)]
        full_rounds = 0
        number = (numbers[-1] + 1) if numbers else 0
        while todo or full_rounds < rounds:
            current = todo.pop(0) if todo else number
            number = max(number, current + 1)
            ctx = _open_round(dataset, current, cfg)
            outcome = run_round(ctx, on_phase, stop_after)
            outcomes.append(outcome)
            full_rounds += 0 if ctx.bootstrap else 1
            if stop_after and stop_after in outcome.ran and not ctx.bootstrap:
                break
    return outcomes
