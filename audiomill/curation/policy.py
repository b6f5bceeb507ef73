"""Filter policies: ``min``/``max`` rules over any numeric column, their evaluation, and a report.

A policy file is YAML::

    name: default
    description: what it is for
    rules:
      q_snr_db: {min: 10}
      q_clipping_ratio: {max: 0.01}
      asr_language_prob: {min: 0.6, reason: language_uncertain, missing: pass}

A rule may name any numeric column a segment row carries by the time the policy runs: quality
metrics (``q_*``), segment columns (``audio_duration_s``, ``vad_segment_speech_ratio``) or columns
later stages add (``asr_*``). A missing value (null/NaN) fails its rule, unless the rule says
``missing: pass``: then rows without a value, and pipelines that never add the column (ASR off),
are not judged by it. A failing row's reject reason is ``policy`` unless the first rule it fails
(in file order) names another code of ``schema.POLICY_REASONS``; the detail names every failed
rule. Evaluation is vectorized per rule; only the detail text of failing rows is built row by row.
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from audiomill import schema, storage
from audiomill.config import DEFAULT_POLICY, ConfigError

DEFAULT_POLICY_FILE = Path(__file__).with_name("default_policy.yaml")
SECONDS_PER_HOUR = 3600.0


class PolicyError(ConfigError):
    """A policy file that cannot be read or is invalid, or names a column the data lacks."""


class Rule(BaseModel):
    """Bounds on one column; a value passes when ``min <= value <= max`` (either may be absent)."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    min: float | None = Field(None, description="smallest value kept")
    max: float | None = Field(None, description="largest value kept")
    reason: str = Field(schema.RejectReason.POLICY.value, description="reject reason of a row failing it")
    missing: Literal["fail", "pass"] = Field("fail", description="a null value, or a column the pipeline "
                                                                 "does not add: fail, or pass (not judged)")

    @model_validator(mode="after")
    def _check_bounds(self) -> "Rule":
        if self.min is None and self.max is None:
            raise ValueError("a rule needs min, max or both")
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError(f"min {self.min} is above max {self.max}")
        if self.reason not in schema.POLICY_REASONS:
            raise ValueError(f"reason {self.reason!r} is not one of {sorted(schema.POLICY_REASONS)}")
        return self

    def as_dict(self) -> dict[str, Any]:
        """min/max as given, plus ``reason``/``missing`` only where not the default (so digests and
        manifests of policies without them are unchanged)."""
        found = self.model_dump()
        for name in ("reason", "missing"):
            if found[name] == Rule.model_fields[name].default:
                del found[name]
        return found


class Policy(BaseModel):
    """A named set of rules, evaluated together: a segment is kept only if it passes all."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = "custom"
    description: str = ""
    rules: dict[str, Rule] = Field(default_factory=dict)

    def digest(self) -> str:
        """Hash of the rules (not of the file's formatting or comments)."""
        rules = {name: rule.as_dict() for name, rule in self.rules.items()}
        return hashlib.sha256(json.dumps(rules, sort_keys=True).encode()).hexdigest()[:16]

    def summary(self, source: str | None = None) -> dict[str, Any]:
        """What a manifest records about the policy that produced a dataset."""
        return {"name": self.name, "source": source, "digest": self.digest(),
                "rules": {name: {k: v for k, v in rule.as_dict().items() if v is not None}
                          for name, rule in self.rules.items()}}

    def required_columns(self) -> list[str]:
        """Columns the pipeline must add: those of every rule that fails a missing value."""
        return [name for name, rule in self.rules.items() if rule.missing == "fail"]


def policy_file(value: str) -> str:
    """The file a config's ``policy`` value names: the packaged default, or a path/URI as given."""
    return str(DEFAULT_POLICY_FILE) if value == DEFAULT_POLICY else value


def policy_source(value: str) -> str:
    """How a manifest names the policy: ``default``, or the path/URI without credentials."""
    return value if value == DEFAULT_POLICY else storage.redact(value)


def load_policy(value: str) -> Policy:
    """Read and validate a policy (``"default"``, a local path or an s3:// URI)."""
    uri = policy_file(value)
    try:
        data = yaml.safe_load(storage.read_text(uri))
    except FileNotFoundError as err:
        raise PolicyError(f"policy file {storage.redact(uri)} does not exist") from err
    except yaml.YAMLError as err:
        raise PolicyError(f"policy file {storage.redact(uri)} is not valid YAML: {err}") from err
    if not isinstance(data, dict):
        raise PolicyError(f"policy file {storage.redact(uri)} must hold a mapping with 'rules'")
    try:
        return Policy.model_validate(data)
    except ValidationError as err:
        problems = "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in err.errors())
        raise PolicyError(f"policy file {storage.redact(uri)} is invalid: {problems}") from err


@dataclass(frozen=True)
class Evaluation:
    """Per row: whether it passes, which rules it fails (rows x rules), the reject reason (the
    first failed rule's) and the detail (every failed rule)."""

    rule_names: list[str]
    failed: np.ndarray  # bool, (rows, rules)
    details: list[str | None]  # None for rows that pass
    reasons: list[str | None]  # None for rows that pass

    @property
    def passed(self) -> np.ndarray:
        return ~self.failed.any(axis=1)


def evaluate(policy: Policy, table: pa.Table) -> Evaluation:
    """Apply every rule to every row of ``table``; raises PolicyError for a missing column."""
    names = list(policy.rules)
    failed = np.zeros((table.num_rows, len(names)), dtype=bool)
    texts: list[list[str]] = [[] for _ in range(table.num_rows)]
    reasons: list[str | None] = [None] * table.num_rows
    for j, name in enumerate(names):
        rule = policy.rules[name]
        if rule.missing == "pass" and name not in table.column_names:
            continue
        values = numeric_column(table, name)
        low = values < rule.min if rule.min is not None else np.zeros(values.size, bool)
        high = values > rule.max if rule.max is not None else np.zeros(values.size, bool)
        missing = np.isnan(values) & (rule.missing == "fail")
        failed[:, j] = low | high | missing
        for row in np.flatnonzero(failed[:, j]).tolist():
            texts[row].append(_failure_text(name, rule, float(values[row]), bool(low[row])))
            reasons[row] = reasons[row] or rule.reason
    details = ["; ".join(parts) if parts else None for parts in texts]
    return Evaluation(names, failed, details, reasons)


def numeric_column(table: pa.Table, name: str) -> np.ndarray:
    """``table[name]`` as float64 with NaN for nulls; PolicyError if absent or not numeric."""
    if name not in table.column_names:
        available = sorted(f.name for f in table.schema if _is_numeric(f.type))
        raise PolicyError(f"policy rule {name!r} names a column the data does not have; "
                          f"numeric columns: {', '.join(available)}")
    column = table[name]
    if not _is_numeric(column.type):
        raise PolicyError(f"policy rule {name!r} names a column of type {column.type}, not a number")
    return pc.cast(column, pa.float64()).to_numpy(zero_copy_only=False).astype(np.float64)


def _is_numeric(kind: pa.DataType) -> bool:
    return pa.types.is_integer(kind) or pa.types.is_floating(kind) or pa.types.is_boolean(kind)


def _failure_text(name: str, rule: Rule, value: float, below: bool) -> str:
    if math.isnan(value):
        bounds = ", ".join(f"{k} {_number(v)}" for k, v in (("min", rule.min), ("max", rule.max)) if v is not None)
        return f"{name}=null ({bounds})"
    if below:
        return f"{name}={_number(value)}<min {_number(rule.min)}"
    return f"{name}={_number(value)}>max {_number(rule.max)}"


def _number(value: float | None) -> str:
    return format(value, ".4g")


def policy_report(policy: Policy, evaluation: Evaluation, durations_s: np.ndarray) -> dict[str, Any]:
    """Kept/rejected hours overall and, per rule, hours failing it and hours failing only it.

    ``kept_hours + rejected_hours == total_hours``; a segment failing two rules counts in both
    rules' ``rejected_hours`` but in neither's ``only_hours``.
    """
    hours = np.nan_to_num(np.asarray(durations_s, dtype=np.float64)) / SECONDS_PER_HOUR
    failed = evaluation.failed
    passed = evaluation.passed
    alone = failed & (failed.sum(axis=1) == 1)[:, None]
    rules = [{"metric": name, "min": policy.rules[name].min, "max": policy.rules[name].max,
              "rejected_segments": int(failed[:, j].sum()), "rejected_hours": float(hours @ failed[:, j]),
              "only_segments": int(alone[:, j].sum()), "only_hours": float(hours @ alone[:, j])}
             for j, name in enumerate(evaluation.rule_names)]
    return {"segments": int(passed.size), "total_hours": float(hours.sum()),
            "kept_segments": int(passed.sum()), "kept_hours": float(hours @ passed),
            "rejected_segments": int((~passed).sum()), "rejected_hours": float(hours @ ~passed),
            "rules": rules}

