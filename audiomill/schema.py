"""Column names, Arrow schemas and reject reason codes: the single source of truth for data shapes.

Rows flow between stages as one Arrow table shape (``FLOW_SCHEMA``). Before segmentation a row is a
source; after it, a row is a segment or a rejected source. A rejected row carries ``reject_*``
columns, passes later stages untouched, and the writer routes it to ``rejects.parquet``.
"""

from __future__ import annotations

import enum

import pyarrow as pa

SAMPLE_RATE = 16_000
"""Analysis and storage sample rate (Hz) of all in-flight and stored audio."""


class RejectReason(str, enum.Enum):
    """Why a source or segment was dropped. Values are stable snake_case codes."""

    READ_ERROR = "read_error"
    EMPTY = "empty"
    TOO_LARGE = "too_large"
    TOO_LONG = "too_long"
    NOT_AUDIO = "not_audio"
    DECODE_ERROR = "decode_error"
    UNSUPPORTED_FORMAT = "unsupported_format"
    TOO_SHORT = "too_short"
    NO_SPEECH = "no_speech"
    UNSAFE_PATH = "unsafe_path"
    BAD_MANIFEST_ROW = "bad_manifest_row"
    DUPLICATE_INPUT = "duplicate_input"
    # crawl: a URL that was never fetched into raw storage
    ROBOTS_DISALLOWED = "robots_disallowed"
    NOT_ALLOWED_DOMAIN = "not_allowed_domain"
    HTTP_ERROR = "http_error"
    NETWORK_ERROR = "network_error"
    TIMEOUT = "timeout"
    BAD_CONTENT_TYPE = "bad_content_type"


class Stage(str, enum.Enum):
    """Names of pipeline stages, as recorded in ``reject_stage`` and timings."""

    CRAWL = "crawl"
    INGEST = "ingest"
    DECODE = "decode"
    VAD = "vad"
    SEGMENT = "segment"
    WRITE = "write"


# -- source columns (one per input file/object/member) -------------------------------------------
SOURCE_ID = "source_id"
SOURCE_URI = "source_uri"
READ_URI = "read_uri"  # object holding the bytes: the file itself, or the tar a member lives in
SOURCE_BYTES = "source_bytes"
SOURCE_OFFSET = "source_offset"  # byte offset of a tar member inside its archive; null otherwise
PART_ID = "part_id"
PART_SOURCES = "part_sources"  # how many sources the part holds (writer checks completeness)
PART_FINGERPRINT = "part_fingerprint"  # hash of the part's listing, stored in its done marker
METADATA_JSON = "metadata_json"  # license, source url and other manifest columns, as JSON text

# -- decode outputs ------------------------------------------------------------------------------
ORIG_SAMPLE_RATE = "orig_sample_rate"
ORIG_CHANNELS = "orig_channels"
ORIG_CODEC = "orig_codec"
ORIG_CONTAINER = "orig_container"
ORIG_DURATION_S = "orig_duration_s"
AUDIO = "audio"  # float32 little-endian PCM at SAMPLE_RATE, mono
AUDIO_DURATION_S = "audio_duration_s"  # duration of AUDIO (source before, segment after split)

# -- VAD outputs (per source, before the split into segments) ------------------------------------
VAD_STARTS_S = "vad_starts_s"
VAD_ENDS_S = "vad_ends_s"
VAD_SPEECH_RATIO = "vad_speech_ratio"  # speech seconds / source seconds
VAD_SEGMENT_SPEECH_RATIOS = "vad_segment_speech_ratios"  # per source: list, one per span
VAD_SEGMENT_SPEECH_RATIO = "vad_segment_speech_ratio"  # per segment: frames above threshold

# -- segment columns -----------------------------------------------------------------------------
KEY = "key"
START_S = "start_s"
END_S = "end_s"

# -- rejects -------------------------------------------------------------------------------------
REJECT_STAGE = "reject_stage"
REJECT_REASON = "reject_reason"
REJECT_DETAIL = "reject_detail"

# -- timing: seconds each stage spent, spread over the rows it produced ---------------------------
TIMING_PREFIX = "t_"
TIMING_SUFFIX = "_s"


def timing_column(stage: str) -> str:
    """Column holding the wall seconds ``stage`` spent, shared out over its output rows."""
    return f"{TIMING_PREFIX}{stage}{TIMING_SUFFIX}"


def is_timing_column(name: str) -> bool:
    return name.startswith(TIMING_PREFIX) and name.endswith(TIMING_SUFFIX)


# -- index columns added by the writer -----------------------------------------------------------
SHARD = "shard"
TAR_OFFSET = "tar_offset"  # byte offset of the .flac member's data inside the shard
FLAC_BYTES = "flac_bytes"

SOURCE_FIELDS = [
    pa.field(SOURCE_ID, pa.string(), nullable=False),
    pa.field(SOURCE_URI, pa.string(), nullable=False),
    pa.field(READ_URI, pa.string(), nullable=False),
    pa.field(SOURCE_BYTES, pa.int64()),
    pa.field(SOURCE_OFFSET, pa.int64()),
    pa.field(PART_ID, pa.int32(), nullable=False),
    pa.field(PART_SOURCES, pa.int32(), nullable=False),
    pa.field(PART_FINGERPRINT, pa.string()),
    pa.field(METADATA_JSON, pa.string()),
]
SOURCE_SCHEMA = pa.schema(SOURCE_FIELDS)

ORIG_FIELDS = [
    pa.field(ORIG_SAMPLE_RATE, pa.int32()),
    pa.field(ORIG_CHANNELS, pa.int32()),
    pa.field(ORIG_CODEC, pa.string()),
    pa.field(ORIG_CONTAINER, pa.string()),
    pa.field(ORIG_DURATION_S, pa.float64()),
]

REJECT_FIELDS = [
    pa.field(REJECT_STAGE, pa.string()),
    pa.field(REJECT_REASON, pa.string()),
    pa.field(REJECT_DETAIL, pa.string()),
]

SEGMENT_FIELDS = [
    pa.field(KEY, pa.string()),
    pa.field(START_S, pa.float64()),
    pa.field(END_S, pa.float64()),
    pa.field(AUDIO_DURATION_S, pa.float64()),
    pa.field(VAD_SPEECH_RATIO, pa.float64()),
    pa.field(VAD_SEGMENT_SPEECH_RATIO, pa.float64()),
]

INDEX_SCHEMA = pa.schema(
    [pa.field(KEY, pa.string(), nullable=False), pa.field(SHARD, pa.string(), nullable=False),
     pa.field(TAR_OFFSET, pa.int64()), pa.field(FLAC_BYTES, pa.int64())]
    + [f for f in SOURCE_FIELDS if f.name not in (PART_SOURCES, PART_FINGERPRINT)]
    + ORIG_FIELDS
    + [f for f in SEGMENT_FIELDS if f.name != KEY]
)
"""One row per kept segment. Later stages append metric columns; readers select by name."""

REJECT_SCHEMA = pa.schema(
    [f for f in SOURCE_FIELDS if f.name not in (PART_SOURCES, PART_FINGERPRINT)]
    + ORIG_FIELDS
    + [pa.field(KEY, pa.string())]
    + REJECT_FIELDS
)
"""One row per rejected source (key null) or rejected segment (key set)."""
