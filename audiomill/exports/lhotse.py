"""Export a dataset as Lhotse manifests (or Lhotse Shar) that the real ``lhotse`` package loads.

One segment is one Recording (its FLAC copied byte for byte to ``audio/<shard>/<key>.flac``), one
SupervisionSegment covering it and one MonoCut. Supervisions carry ``text`` (``asr_text``),
``language`` (``asr_language``) and ``speaker`` (``diar_speaker``) when present; every other
index column (quality ``q_*``, VAD, ASR scores, source URI) plus the source's ``metadata``
(license, source URL, fetch time) go into ``custom``. Token and label columns go into both the
supervision's and the cut's ``custom``. With ``shar=True`` the output is Lhotse Shar instead
(``cuts.NNNNNN.jsonl.gz`` + ``recording.NNNNNN.tar``; lossless FLAC, so samples are unchanged).
"""

from __future__ import annotations

import contextlib
import io
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import soundfile as sf

from audiomill import schema
from audiomill.exports.common import (POSITION_COLUMNS, ExportSummary, export_table, iter_members,
                                      json_value, metadata)

logger = logging.getLogger(__name__)

SUPERVISION_FIELDS = {schema.ASR_TEXT: "text", schema.ASR_LANGUAGE: "language", schema.DIAR_SPEAKER: "speaker"}
RECORDINGS_FILE = "recordings.jsonl.gz"
SUPERVISIONS_FILE = "supervisions.jsonl.gz"
CUTS_FILE = "cuts.jsonl.gz"


def _custom(row: dict[str, Any], columns: list[str]) -> dict[str, Any]:
    return {name: json_value(row[name]) for name in columns}


def _cut(row: dict[str, Any], recording: Any, side_columns: list[str]) -> Any:
    from lhotse import MonoCut, SupervisionSegment

    key = row[schema.KEY]
    skip = set(POSITION_COLUMNS) | set(SUPERVISION_FIELDS) | {schema.KEY, schema.METADATA_JSON}
    custom = _custom(row, [c for c in row if c not in skip])
    custom["metadata"] = json_value(metadata(row))
    supervision = SupervisionSegment(
        id=key, recording_id=key, start=0.0, duration=recording.duration, channel=0,
        custom=custom, **{field: row.get(column) for column, field in SUPERVISION_FIELDS.items()})
    return MonoCut(id=key, start=0.0, duration=recording.duration, channel=0, recording=recording,
                   supervisions=[supervision], custom=_custom(row, side_columns) or None)


def _file_recording(key: str, path: Path, flac: bytes) -> Any:
    from lhotse import Recording
    from lhotse.audio import AudioSource

    frames = sf.info(io.BytesIO(flac)).frames
    return Recording(id=key, sources=[AudioSource(type="file", channels=[0], source=str(path.resolve()))],
                     sampling_rate=schema.SAMPLE_RATE, num_samples=frames, duration=frames / schema.SAMPLE_RATE)


def _sink(stack: contextlib.ExitStack, out: Path, shar: bool, shar_shard_size: int
          ) -> Callable[[Any, Any], None]:
    """A function that writes one (recording, cut) pair to the chosen format."""
    from lhotse.serialization import SequentialJsonlWriter
    from lhotse.shar import SharWriter

    if shar:
        writer = stack.enter_context(SharWriter(str(out), fields={"recording": "flac"}, shard_size=shar_shard_size))
        return lambda recording, cut: writer.write(cut)
    writers = [stack.enter_context(SequentialJsonlWriter(out / name))
               for name in (RECORDINGS_FILE, SUPERVISIONS_FILE, CUTS_FILE)]

    def write(recording: Any, cut: Any) -> None:
        for target, item in zip(writers, (recording, cut.supervisions[0], cut)):
            target.write(item)
    return write


def export_lhotse(root: str, out: str | Path, shar: bool = False, shar_shard_size: int = 1000) -> ExportSummary:
    """Write Lhotse manifests (or Shar with ``shar``) of dataset ``root`` under the local dir ``out``."""
    from lhotse import Recording

    source = export_table(root)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    segments, seconds = 0, 0.0
    with contextlib.ExitStack() as stack:
        write = _sink(stack, out, shar, shar_shard_size)
        for row, flac in iter_members(root, source.table):
            key = row[schema.KEY]
            if shar:  # the writer re-encodes the (lossless) audio into its own tars
                recording = Recording.from_bytes(flac, recording_id=key)
            else:
                path = out / "audio" / row[schema.SHARD].removesuffix(".tar") / f"{key}.flac"
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_bytes(flac)
                recording = _file_recording(key, path, flac)
            write(recording, _cut(row, recording, source.side_columns))
            segments += 1
            seconds += recording.duration
    files = sorted(str(p.relative_to(out)) for p in out.glob("*") if p.is_file())
    logger.info("lhotse export of %s: %d segments, %.1f s", root, segments, seconds)
    return ExportSummary(str(out), segments, seconds, files, source.token_tables, source.label_rounds)
