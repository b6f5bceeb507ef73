"""The annotation record of the self-labeling rounds: one typed description per segment.

Every field carries a value, a confidence (0..1) and the model version that produced it; band
fields also carry the measurement they were cut from (Hz, words/s, dB). Column names come from
``schema`` (``ann_*``); ``ANNOTATION_ARROW_SCHEMA`` is the shape of ``annotations.parquet``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa

from audiomill import schema

GENDERS = ("female", "male")
AGE_BANDS = ("child", "adult", "senior")
PITCH_BANDS = ("low", "mid", "high")
RATE_BANDS = ("slow", "normal", "fast")
STYLES = ("neutral", "animated", "calm")
SCENES = ("quiet", "noisy", "reverberant")
NOISE_TYPES = ("none", "white", "pink", "babble", "hum", "music")
SNR_BANDS = ("lt10", "10to20", "20to30", "ge30")
CLASSES: dict[str, tuple[str, ...]] = {
    schema.ANN_GENDER: GENDERS, schema.ANN_AGE_BAND: AGE_BANDS, schema.ANN_PITCH_BAND: PITCH_BANDS,
    schema.ANN_RATE_BAND: RATE_BANDS, schema.ANN_STYLE: STYLES, schema.ANN_SCENE: SCENES,
    schema.ANN_NOISE_TYPE: NOISE_TYPES, schema.ANN_SNR_BAND: SNR_BANDS,
}
"""Closed vocabularies of the categorical fields (transcript and language are open)."""

PITCH_EDGES_HZ = (150.0, 220.0)  # low < 150 <= mid < 220 <= high
RATE_EDGES_WPS = (3.3, 5.0)  # words per active second (pauses excluded)
SNR_EDGES_DB = (10.0, 20.0, 30.0)
SNR_BAND_CENTRES_DB = {"lt10": 5.0, "10to20": 15.0, "20to30": 25.0, "ge30": 45.0}


def band(value: float, edges: tuple[float, ...], names: tuple[str, ...]) -> str:
    """The name of the band ``value`` falls in (``edges`` ascending, one fewer than ``names``)."""
    return names[sum(value >= e for e in edges)]


def band_confidence(value: float, edges: tuple[float, ...], scale: float) -> float:
    """How far ``value`` is from the nearest band edge, squashed to 0.5..1 (``scale``: units)."""
    if not math.isfinite(value):
        return 0.0
    distance = min(abs(value - e) for e in edges)
    return 0.5 + 0.5 * math.tanh(distance / scale)


def pitch_band(hz: float) -> str:
    return band(hz, PITCH_EDGES_HZ, PITCH_BANDS)


def rate_band(wps: float) -> str:
    return band(wps, RATE_EDGES_WPS, RATE_BANDS)


def snr_band(db: float) -> str:
    return band(db, SNR_EDGES_DB, SNR_BANDS)


@dataclass(frozen=True)
class FieldValue:
    """One annotated field: value, confidence 0..1, producing model, and the measure if banded."""

    value: str | None
    conf: float
    model: str
    measure: float | None = None


@dataclass(frozen=True)
class Annotation:
    """A segment's full description; ``fields`` is keyed by ``schema.ANNOTATION_FIELDS``."""

    key: str
    fields: dict[str, FieldValue]
    schema_version: int = schema.ANNOTATION_SCHEMA_VERSION

    def value(self, name: str) -> str | None:
        return self.fields[name].value

    def min_conf(self) -> float:
        """The least confident field: what selection ranks by."""
        return min(f.conf for f in self.fields.values())

    def replace(self, name: str, value: str | None, conf: float | None = None) -> Annotation:
        """A copy with ``name`` set to ``value`` (used to plant wrong labels in benchmarks)."""
        old = self.fields[name]
        new = FieldValue(value, old.conf if conf is None else conf, old.model, old.measure)
        return Annotation(self.key, {**self.fields, name: new}, self.schema_version)

    def to_row(self) -> dict[str, Any]:
        row: dict[str, Any] = {schema.KEY: self.key, schema.ANN_SCHEMA_VERSION: self.schema_version}
        for name in schema.ANNOTATION_FIELDS:
            item = self.fields[name]
            row[name] = item.value
            row[schema.conf_column(name)] = float(item.conf)
            row[schema.model_column(name)] = item.model
            if name in schema.ANNOTATION_MEASURES:
                row[schema.ANNOTATION_MEASURES[name]] = item.measure
        return row

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> Annotation:
        fields = {name: FieldValue(row[name], float(row[schema.conf_column(name)]),
                                   row[schema.model_column(name)],
                                   row.get(schema.ANNOTATION_MEASURES.get(name, ""), None))
                  for name in schema.ANNOTATION_FIELDS}
        return cls(row[schema.KEY], fields, int(row[schema.ANN_SCHEMA_VERSION]))


def _annotation_fields() -> list[pa.Field]:
    out = [pa.field(schema.KEY, pa.string(), nullable=False), pa.field(schema.ANN_SCHEMA_VERSION, pa.int32())]
    for name in schema.ANNOTATION_FIELDS:
        out += [pa.field(name, pa.string()), pa.field(schema.conf_column(name), pa.float64()),
                pa.field(schema.model_column(name), pa.string())]
        if name in schema.ANNOTATION_MEASURES:
            out.append(pa.field(schema.ANNOTATION_MEASURES[name], pa.float64()))
    return out


ANNOTATION_ARROW_SCHEMA = pa.schema(_annotation_fields())


def annotations_table(annotations: list[Annotation]) -> pa.Table:
    """Annotations in ``ANNOTATION_ARROW_SCHEMA``, in the order given."""
    return pa.Table.from_pylist([a.to_row() for a in annotations], schema=ANNOTATION_ARROW_SCHEMA)


def annotations_from_table(table: pa.Table) -> list[Annotation]:
    return [Annotation.from_row(row) for row in table.to_pylist()]


@dataclass(frozen=True)
class Truth:
    """Known answers of a seed or evaluation clip (None where unknown)."""

    transcript: str | None = None
    language: str | None = None
    labels: dict[str, str] = field(default_factory=dict)  # ann_* field -> class value
