"""The select phase spends the re-synthesis budget on clips no earlier round accepted."""

import pyarrow as pa
import pyarrow.parquet as pq

from audiomill import schema
from audiomill.jobs.rounds.context import RoundContext
from audiomill.jobs.rounds.models import Pinned
from audiomill.jobs.rounds.phases import select
from audiomill.models.registry import ModelRegistry
from audiomill.rounds import store as files
from audiomill.rounds.config import RoundConfig
from audiomill.rounds.store import RoundStore


def _context(dataset: str, number: int, **cfg) -> RoundContext:
    pinned = Pinned("asr", "asr-id", 1, "heads", "heads@1", "")
    return RoundContext(dataset, number, RoundConfig(**cfg), pinned, RoundStore(dataset, number),
                        ModelRegistry(dataset + "/registry"))


def test_clips_accepted_earlier_are_not_reverified_unless_asked(tmp_path):
    dataset = str(tmp_path)
    keys = [f"k{i}" for i in range(6)]
    confidences = {schema.conf_column(f): [0.1 * (i + 1) for i in range(6)] for f in schema.ANNOTATION_FIELDS}
    RoundStore(dataset, 2).write_table(files.ANNOTATIONS, pa.table(
        {schema.KEY: keys, schema.AUDIO_DURATION_S: [10.0] * 6, **confidences}))
    RoundStore(dataset, 1).write_table(files.ACCEPTED, pa.table({schema.KEY: ["k0", "k1"]}))
    budget = {"budget_hours": 30 / 3600, "random_share": 0.0}  # three clips

    summary = select(_context(dataset, 2, **budget))
    chosen = pq.read_table(tmp_path / "labels" / "round-002" / files.SELECTION).column(schema.KEY).to_pylist()
    assert chosen == ["k2", "k3", "k4"] and summary["already_accepted"] == 2  # least confident NEW clips
    select(_context(dataset, 2, reverify_accepted=True, **budget))
    chosen = pq.read_table(tmp_path / "labels" / "round-002" / files.SELECTION).column(schema.KEY).to_pylist()
    assert chosen == ["k0", "k1", "k2"]
