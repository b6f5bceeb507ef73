"""Semantic features of datasets' kept segments with Ray Data: the tokenizer's training input.

The driver lists segments from each dataset's ``index.parquet`` (small rows: dataset, key, shard,
byte range). Ray Data streams them through an actor pool that holds the frozen Whisper encoder
and the speaker encoder; each actor reads its segments' FLAC members by byte range (never a whole
shard; reading in the actor leaves no separate task waiting for a CPU the actors hold) and emits
one row per segment: 25 Hz encoder states, the decoder's log-mel target and a speaker embedding,
written to parquet under the output directory. Memory stays bounded by Ray Data's streaming
batches; nothing but file names returns to the driver.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from audiomill import layout, schema, storage
from audiomill.audio import decode_flac
from audiomill.execution.ray_session import RaySettings, ray_session
from audiomill.models.tokenizer.mel import MelConfig

logger = logging.getLogger(__name__)

DATASET = "dataset"
STATES = "states"  # float32 bytes, (frames, dim) row-major
FRAMES = "frames"
DIM = "dim"
MEL = "mel"  # float32 bytes, (4 * frames, n_mels)
SPEAKER = "speaker"  # float32 bytes, (256,)
_SEGMENT_COLUMNS = [schema.KEY, schema.SHARD, schema.TAR_OFFSET, schema.FLAC_BYTES, schema.PART_ID]


@dataclass(frozen=True)
class FeatureJob:
    """What to compute. ``workers`` encoder actors with ``threads`` CTranslate2 threads each."""

    encoder_dir: str
    output_dir: str
    window_s: float = 10.0
    workers: int = 2
    threads: int = 1
    device: str = "cpu"
    batch_size: int = 8
    targets: bool = True  # mel + speaker embedding (decoder training) as well as states
    mel: MelConfig = field(default_factory=MelConfig)


def list_segments(datasets: list[str], max_segments: int | None = None) -> pa.Table:
    """Kept segments of every dataset (index rows), sorted by (dataset, key) for determinism."""
    tables = []
    for root in datasets:
        uri = storage.join(root, layout.INDEX_FILE)
        if not storage.exists(uri):
            raise FileNotFoundError(f"{uri} does not exist: run `audiomill clean` to make the dataset first")
        index = pq.read_table(pa.BufferReader(storage.read_bytes(uri)), columns=_SEGMENT_COLUMNS)
        tables.append(index.append_column(DATASET, pa.array([root] * index.num_rows, pa.string())))
    table = pa.concat_tables(tables).sort_by([(DATASET, "ascending"), (schema.KEY, "ascending")])
    return table.slice(0, max_segments) if max_segments else table


def segments_digest(segments: pa.Table) -> str:
    """sha256 over ``dataset<TAB>key`` lines: the training-data digest recorded in the registry."""
    digest = hashlib.sha256()
    for dataset, key in zip(segments[DATASET].to_pylist(), segments[schema.KEY].to_pylist(), strict=True):
        digest.update(f"{dataset}\t{key}\n".encode())
    return digest.hexdigest()


def read_audio_batch(batch: pa.Table) -> pa.Table:
    """Add ``audio`` (float32 bytes) by reading each segment's FLAC member by byte range."""
    audio = []
    for root, shard, offset, size in zip(batch[DATASET].to_pylist(), batch[schema.SHARD].to_pylist(),
                                         batch[schema.TAR_OFFSET].to_pylist(),
                                         batch[schema.FLAC_BYTES].to_pylist(), strict=True):
        flac = storage.read_bytes(layout.shard_uri(root, shard), offset, size)
        audio.append(decode_flac(flac).astype("<f4").tobytes())
    return batch.append_column(schema.AUDIO, pa.array(audio, pa.binary()))


class FeatureWorker:
    """One actor: the encoder (and speaker encoder) loaded once, then batches of segments."""

    def __init__(self, job: FeatureJob) -> None:
        from audiomill.models.tokenizer.semantic import EncoderOptions, WhisperEncoder

        self.job = job
        self.encoder = WhisperEncoder(job.encoder_dir, EncoderOptions(
            window_s=job.window_s, device=job.device, threads=job.threads,
            compute_type="int8" if job.device == "cpu" else "int8_float16"))
        self.speaker = None
        if job.targets:
            from audiomill.models.speaker_encoder import SpeakerEncoder

            self.speaker = SpeakerEncoder()

    def __call__(self, batch: pa.Table) -> pa.Table:
        from audiomill.models.tokenizer.mel import log_mel

        batch = read_audio_batch(batch)
        clips = [np.frombuffer(raw, "<f4") for raw in batch[schema.AUDIO].to_pylist()]
        states = self.encoder.states_batch(clips)
        columns = {DATASET: batch[DATASET], schema.KEY: batch[schema.KEY],
                   STATES: pa.array([s.astype("<f4").tobytes() for s in states], pa.binary()),
                   FRAMES: pa.array([len(s) for s in states], pa.int32()),
                   DIM: pa.array([self.encoder.dim] * len(states), pa.int32())}
        if self.speaker is not None:
            columns[MEL] = pa.array([log_mel(c, self.job.mel).astype("<f4").tobytes() for c in clips], pa.binary())
            columns[SPEAKER] = pa.array([self.speaker.embed(c).astype("<f4").tobytes() for c in clips], pa.binary())
        return pa.table(columns)


def extract_features(segments: pa.Table, job: FeatureJob, ray_settings: RaySettings | None = None) -> str:
    """Run the extraction; returns ``job.output_dir`` holding the feature parquet files."""
    storage.delete_prefix(job.output_dir)
    with ray_session(ray_settings) as ray:
        size = -(-segments.num_rows // max(1, min(segments.num_rows // job.batch_size, 8 * job.workers)))
        dataset = ray.data.from_arrow([segments.slice(i, size) for i in range(0, segments.num_rows, size)])
        dataset = dataset.map_batches(FeatureWorker, fn_constructor_args=(job,), batch_format="pyarrow",
                                      batch_size=job.batch_size, concurrency=job.workers,
                                      num_cpus=job.threads, num_gpus=1 if job.device == "cuda" else 0)
        # writes are I/O: they take no CPU, so actors holding every CPU cannot starve them
        dataset.write_parquet(job.output_dir, ray_remote_args={"num_cpus": 0})
    logger.info("features of %d segments in %s", segments.num_rows, job.output_dir)
    return job.output_dir


def feature_files(output_dir: str) -> list[str]:
    return sorted(info.uri for info in storage.list_files(output_dir) if info.uri.endswith(".parquet"))


def sample_frames(output_dir: str, max_frames: int, seed: int) -> np.ndarray:
    """A deterministic sample of at most ~``max_frames`` state rows (for k-means).

    Each segment's frames are drawn with its own generator seeded from (seed, dataset, key), so
    the sample does not depend on file order or on how Ray split the work.
    """
    files = feature_files(output_dir)
    total = sum(pc.sum(pq.read_table(f, columns=[FRAMES])[FRAMES]).as_py() or 0 for f in files)
    rate = min(1.0, max_frames / max(total, 1))
    picked: list[tuple[str, str, np.ndarray]] = []
    for path in files:
        for batch in pq.ParquetFile(path).iter_batches(columns=[DATASET, schema.KEY, STATES, DIM]):
            for dataset, key, raw, dim in zip(*(batch.column(i).to_pylist() for i in range(4)), strict=True):
                states = np.frombuffer(raw, "<f4").reshape(-1, dim)
                rng = np.random.default_rng([seed, *hashlib.sha256(f"{dataset}\t{key}".encode()).digest()[:8]])
                picked.append((dataset, key, states[rng.random(len(states)) < rate]))
    picked.sort(key=lambda item: item[:2])
    return np.concatenate([p[2] for p in picked]) if picked else np.zeros((0, 0), np.float32)


def iter_features(output_dir: str, columns: list[str]) -> list[dict]:
    """All feature rows (chosen columns) sorted by (dataset, key); for tables that fit in memory."""
    table = pa.concat_tables([pq.read_table(f, columns=[DATASET, schema.KEY, *columns])
                              for f in feature_files(output_dir)])
    return table.sort_by([(DATASET, "ascending"), (schema.KEY, "ascending")]).to_pylist()
