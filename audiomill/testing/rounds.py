"""A small cleaned dataset for round tests and benchmarks: seed-like clips with known answers.

Clips (generated espeak speech in known voices and scenes, plus the real alsa clips) are written
as WAV files and cleaned by ``audiomill clean`` (local runner, no filter policy), so the round
reads them exactly as it reads any dataset: index byte ranges into FLAC shards.
"""

from __future__ import annotations

from pathlib import Path

from audiomill.annotation import Truth
from audiomill.config import load_config
from audiomill.jobs.clean import run_clean
from audiomill.models.generation.voices import SENTENCES
from audiomill.rounds import seed
from audiomill.testing import signals

DATASET_SEED = 4242


def make_round_dataset(root: Path, count: int, *, real: bool = True, seed_value: int = DATASET_SEED,
                       part_size: int = 4, texts: tuple[str, ...] = SENTENCES) -> tuple[Path, dict[str, Truth]]:
    """(dataset dir, truth by source file stem) for ``count`` generated clips of ``texts`` (+ alsa clips)."""
    raw = root / "raw"
    clips = seed.generated_set(count, seed_value, texts) + (seed.real_set() if real else [])
    truth = {}
    for clip in clips:
        signals.write_audio(raw / f"{clip.key}.wav", clip.audio, 16_000)
        truth[clip.key] = clip.truth
    out = root / "dataset"
    cfg = load_config(inputs=[str(raw)], output=str(out),
                      overrides=["runner.kind=local", f"ingest.part_size={part_size}", "policy=null",
                                 "dedup.enabled=false"])
    run_clean(cfg)
    return out, truth
