"""The seed (training) and held-out (evaluation) tables of a dataset: features + known answers.

Made once per dataset under ``labels/seed/`` (``train.parquet``, ``eval.parquet``, then
``_DONE.json``) with the ASR encoder pinned by the first round; every round trains on ``train``
and scores on ``eval``. ``eval`` holds generated clips from another seed plus the real alsa clips,
which never appear in training (accuracy on them measures transfer to real speech).
"""

from __future__ import annotations

import pyarrow as pa

from audiomill import layout, storage
from audiomill.execution.clips import map_clips
from audiomill.execution.ray_session import RaySettings
from audiomill.jobs.rounds.tasks import ORIGIN, SET, SeedFeaturesTask, make_worker
from audiomill.rounds import seed as seeds
from audiomill.rounds.config import RoundConfig
from audiomill.rounds.store import read_json, read_table, write_json, write_table
from audiomill.rounds.worker import WorkerSpec

TRAIN, EVAL = "train", "eval"
EVAL_SEED_OFFSET = 7919  # eval clips come from another seed than training clips


def _rows(cfg: RoundConfig) -> list[dict]:
    rows = [{"key": f"seed-{cfg.seed}-{i:05d}", SET: TRAIN, ORIGIN: "generated", "index": i, "seed": cfg.seed}
            for i in range(cfg.seed_clips)]
    eval_seed = cfg.seed + EVAL_SEED_OFFSET
    rows += [{"key": f"seed-{eval_seed}-{i:05d}", SET: EVAL, ORIGIN: "generated", "index": i, "seed": eval_seed}
             for i in range(cfg.eval_clips)]
    rows += [{"key": c.key, SET: EVAL, ORIGIN: "real", "index": -1, "seed": -1} for c in seeds.real_set()]
    return rows


def seed_tables(dataset: str, cfg: RoundConfig, spec: WorkerSpec, ray: RaySettings | None) -> tuple[pa.Table, pa.Table]:
    """(train, eval) tables, computed on first use and read back afterwards."""
    base = layout.seed_dir(dataset)
    marker = storage.join(base, layout.DONE_MARKER)
    wanted = {"seed": cfg.seed, "seed_clips": cfg.seed_clips, "eval_clips": cfg.eval_clips, "asr": spec.asr_id,
              "tokenizer": spec.tokenizer}
    if not (storage.exists(marker) and read_json(marker) == wanted):
        rows = map_clips(_rows(cfg), make_worker, spec, SeedFeaturesTask(), runner=cfg.runner, settings=ray,
                         actors=cfg.actors, batch_size=cfg.batch_size)
        table = pa.Table.from_pylist(rows)
        for name in (TRAIN, EVAL):
            part = table.filter(pa.compute.equal(table.column(SET), name))
            write_table(storage.join(base, f"{name}.parquet"), part)
        write_json(marker, wanted)
    return read_table(storage.join(base, f"{TRAIN}.parquet")), read_table(storage.join(base, f"{EVAL}.parquet"))
