"""Pricing a self-labeling round from rounds that were measured: what one round costs for a
dataset of N hours at a re-synthesis budget of B hours.

Each finished round records the wall seconds of its phases (``labels/round-NNN/_phase-*.json``)
and the CPUs it ran with (``round.json``). From those, each phase gets a cost per unit of the
work that drives it:
- annotate: core-seconds per hour of annotated audio (every clip is annotated);
- re-synthesize and verify: core-seconds per hour of selected audio (what the budget caps);
- train: core-seconds per training row (the seed clips plus every label accepted so far);
- select, accept, evaluate and register: fixed seconds per round.

Core-seconds are wall seconds times the CPUs of the measured run. The phases run one after
another, each spread over the cluster's CPUs, so the wall time is the sum of the phases' core-
hours divided by the CPUs. The fixed phases do not shrink on a bigger cluster, so they are added
as they were measured.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

from audiomill import storage
from audiomill.execution.planner import ClusterSpec
from audiomill.rounds import store as files
from audiomill.rounds.store import RoundStore, round_numbers

SCALED = {"annotate": "annotated_hours", "resynthesize": "selected_hours", "verify": "selected_hours",
          "train": "train_rows"}
FIXED = ("select", "accept", "evaluate", "register")


@dataclass(frozen=True)
class MeasuredRound:
    """One finished round: wall seconds per phase, its CPUs, and the amounts that drive cost."""

    number: int
    cpus: int
    wall_s: dict[str, float]
    annotated_hours: float
    selected_hours: float
    train_rows: int
    acceptance_rate: float
    clips_per_hour: float


def measured_rounds(dataset: str) -> list[MeasuredRound]:
    """The finished rounds of ``dataset`` that annotated something (round 0 only trains)."""
    out = []
    for number in round_numbers(dataset):
        store = RoundStore(dataset, number)
        markers = {p: store.marker(p) for p in (*SCALED, *FIXED)}
        if any(m is None for m in markers.values()) or not markers["annotate"].get("hours"):
            continue
        config = _round_config(store)
        annotate, select, verify = markers["annotate"], markers["select"], markers["verify"]
        out.append(MeasuredRound(
            number, int(config.get("num_cpus") or os.cpu_count() or 1),
            {p: float(m.get("wall_s", 0.0)) for p, m in markers.items()},
            float(annotate["hours"]), float(select.get("hours", 0.0)), int(markers["train"].get("rows", 0)),
            float(verify.get("acceptance_rate", 0.0)), annotate["clips"] / annotate["hours"]))
    return out


def _round_config(store: RoundStore) -> dict[str, Any]:
    uri = store.uri(files.ROUND_JSON)
    return files.read_json(uri).get("config", {}) if storage.exists(uri) else {}


def plan_round(hours: float, budget_hours: float, measured: list[MeasuredRound], spec: ClusterSpec) -> dict[str, Any]:
    """Core-hours and wall hours per phase of one round over ``hours`` of audio, re-synthesizing
    ``budget_hours`` of it. Training rows are the latest measured round's (seed clips plus every
    label accepted so far) plus the clips this round is expected to accept."""
    if hours <= 0 or budget_hours <= 0:
        raise ValueError("hours and budget hours must be > 0")
    if not measured:
        raise ValueError("no finished round with annotations to measure from: run `audiomill round run` on a "
                         "sample first")
    budget_hours = min(budget_hours, hours)
    totals = {unit: sum(getattr(m, unit) for m in measured) for unit in set(SCALED.values())}
    acceptance = sum(m.acceptance_rate * m.selected_hours for m in measured) / max(totals["selected_hours"], 1e-12)
    clips_per_hour = sum(m.clips_per_hour * m.annotated_hours for m in measured) / totals["annotated_hours"]
    amounts = {"annotated_hours": hours, "selected_hours": budget_hours,
               "train_rows": measured[-1].train_rows + budget_hours * clips_per_hour * acceptance}
    rows = []
    for phase, unit in SCALED.items():
        core_s = sum(m.wall_s[phase] * m.cpus for m in measured)
        per_unit = core_s / max(totals[unit], 1e-12)
        core_hours = per_unit * amounts[unit] / 3600
        rows.append({"phase": phase, "core_s_per_unit": per_unit, "unit": unit, "amount": amounts[unit],
                     "core_hours": core_hours, "wall_hours": core_hours / spec.cpus})
    fixed_s = sum(m.wall_s[p] for m in measured for p in FIXED) / len(measured)
    rows.append({"phase": "+".join(FIXED), "core_s_per_unit": fixed_s, "unit": "round", "amount": 1,
                 "core_hours": fixed_s / 3600, "wall_hours": fixed_s / 3600})
    return {
        "hours": hours, "budget_hours": budget_hours, "cluster": {"cpus": spec.cpus, "gpus": spec.gpus},
        "based_on": {"rounds": [m.number for m in measured], "annotated_hours": totals["annotated_hours"],
                     "selected_hours": totals["selected_hours"]},
        "expected": {"clips_per_hour": clips_per_hour, "acceptance_rate": acceptance,
                     "accepted_clips": budget_hours * clips_per_hour * acceptance},
        "phases": rows,
        "bottleneck": max(rows, key=lambda r: r["wall_hours"])["phase"],
        "wall_hours": sum(r["wall_hours"] for r in rows),
    }
