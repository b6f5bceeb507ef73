"""What every phase of one round reads: dataset, config, pinned models, store, Ray settings."""

from __future__ import annotations

from dataclasses import dataclass

from audiomill.execution.clips import Rows, map_clips
from audiomill.execution.ray_session import RaySettings
from audiomill.jobs.rounds.models import Pinned
from audiomill.jobs.rounds.tasks import make_worker
from audiomill.models.registry import ModelRegistry
from audiomill.rounds.config import RoundConfig
from audiomill.rounds.store import RoundStore
from audiomill.rounds.worker import WorkerSpec


@dataclass(frozen=True)
class RoundContext:
    dataset: str
    number: int
    cfg: RoundConfig
    pinned: Pinned
    store: RoundStore
    registry: ModelRegistry

    @property
    def bootstrap(self) -> bool:
        """No heads to annotate with yet: this round only trains the first heads on the seed set."""
        return self.pinned.heads_parent is None

    @property
    def ray(self) -> RaySettings:
        return RaySettings(address=self.cfg.address, num_cpus=self.cfg.num_cpus)

    def spec(self) -> WorkerSpec:
        p = self.pinned
        return WorkerSpec(asr_dir=p.asr_dir, asr_id=p.asr_id, heads_dir=p.heads_parent_dir,
                          heads_id=p.heads_parent_id, engine=self.cfg.engine, tokenizer=p.tokenizer,
                          registry=self.cfg.registry)

    def map(self, rows: Rows, task) -> Rows:  # noqa: ANN001 - a tasks.* object
        return map_clips(rows, make_worker, self.spec(), task, runner=self.cfg.runner, settings=self.ray,
                         actors=self.cfg.actors, batch_size=self.cfg.batch_size)
