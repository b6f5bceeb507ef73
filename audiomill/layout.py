"""Where each file of a dataset lives under its output root (local dir or s3:// prefix)."""

from __future__ import annotations

from audiomill import storage

SHARDS_DIR = "shards"
HELD_DIR = "held"  # audio of policy-rejected segments, so `audiomill curate` can bring them back
HELD_PREFIX = "held"  # held shard names start with this (kept ones with "shard")
PARTS_DIR = "_parts"
INDEX_FILE = "index.parquet"
REJECTS_FILE = "rejects.parquet"
MANIFEST_FILE = "manifest.json"
DONE_MARKER = "_DONE.json"
FEATURES_FILE = "features.parquet"  # per part: dedup features of kept segments
DEDUP_FILE = "dedup.parquet"  # dataset root: one row per segment, its cluster and fate
EXPORTS_FILE = "exports.json"  # dataset root: where `audiomill export` wrote it, for takedown to refresh
LOCK_FILE = "_LOCK.json"  # dataset root: the lease of the job writing it (jobs/lock.py)
DATASET_FORMAT_PREFIX = "audiomill-dataset/"  # manifest.json "format" of every dataset version


def shards_dir(root: str) -> str:
    return storage.join(root, SHARDS_DIR)


def held_dir(root: str) -> str:
    return storage.join(root, HELD_DIR)


def shard_uri(root: str, name: str) -> str:
    """Where the shard ``name`` (as the index's ``shard`` column holds it) lives."""
    return storage.join(root, HELD_DIR if name.startswith(HELD_PREFIX + "-") else SHARDS_DIR, name)


def part_dir(root: str, part_id: int) -> str:
    return storage.join(root, PARTS_DIR, f"part-{part_id:06d}")


def part_file(root: str, part_id: int, name: str) -> str:
    """A file of one part: ``sources.parquet``, ``index.parquet``, ``rejects.parquet``, ``_DONE.json``."""
    return storage.join(part_dir(root, part_id), name)


def marker_uri(root: str, part_id: int) -> str:
    return part_file(root, part_id, DONE_MARKER)


JOB_FILE = "_JOB.json"  # under _parts/: which inputs this dataset is made from (refuses other jobs)


def job_uri(root: str) -> str:
    return storage.join(root, PARTS_DIR, JOB_FILE)


def lock_uri(root: str) -> str:
    return storage.join(root, LOCK_FILE)


TOKENS_DIR = "tokens"  # tokens/NAME@VERSION/part-*.parquet: token tables keyed by segment key


def tokens_dir(root: str, model_id: str) -> str:
    """Where the token tables of tokenizer ``model_id`` (``name@3``) live under a dataset."""
    if "/" in model_id or model_id in ("", ".", ".."):
        raise ValueError(f"model id {model_id!r} cannot name a directory")
    return storage.join(root, TOKENS_DIR, model_id)


def token_part_uri(root: str, model_id: str, part_id: int) -> str:
    return storage.join(tokens_dir(root, model_id), f"part-{part_id:06d}.parquet")


def token_marker_uri(root: str, model_id: str, part_id: int) -> str:
    return storage.join(tokens_dir(root, model_id), f"part-{part_id:06d}{DONE_MARKER}")


TOKEN_EVAL_FILE = "eval.json"  # tokens/<model>/eval.json: the last `audiomill tokenizer eval` on this dataset


def token_eval_uri(root: str, model_id: str) -> str:
    return storage.join(tokens_dir(root, model_id), TOKEN_EVAL_FILE)


LABELS_DIR = "labels"  # self-labeling rounds: labels/round-NNN/*.parquet keyed by segment key
SEED_DIR = "seed"  # labels/seed/: features + known answers of the seed and held-out sets


def labels_dir(root: str) -> str:
    return storage.join(root, LABELS_DIR)


def round_dir(root: str, number: int) -> str:
    return storage.join(root, LABELS_DIR, f"round-{number:03d}")


def label_round_dir(root: str, round_name: str) -> str:
    """Directory of one round's label tables by name (``round-001``), as readers list them."""
    return storage.join(root, LABELS_DIR, round_name)


def seed_dir(root: str) -> str:
    return storage.join(root, LABELS_DIR, SEED_DIR)
