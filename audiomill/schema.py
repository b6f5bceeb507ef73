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
    SPEECH_OVERLAP = "speech_overlap"  # diarize.drop_overlap removed all of a source's speech
    UNSAFE_PATH = "unsafe_path"
    BAD_MANIFEST_ROW = "bad_manifest_row"
    DUPLICATE_INPUT = "duplicate_input"
    POLICY = "policy"  # a segment failed one or more filter-policy rules (detail names each)
    LANGUAGE = "language"  # ASR language ID outside the job's allow-list
    # dedup: a segment repeating one that was kept (``duplicate_of`` names it)
    DUPLICATE_EXACT = "duplicate_exact"  # same decoded PCM
    DUPLICATE_AUDIO = "duplicate_audio"  # same audio re-encoded/resampled/trimmed/noisy, or contained
    DUPLICATE_TEXT = "duplicate_text"  # different audio, same transcript
    # crawl: a URL that was never fetched into raw storage
    ROBOTS_DISALLOWED = "robots_disallowed"
    NOT_ALLOWED_DOMAIN = "not_allowed_domain"
    HTTP_ERROR = "http_error"
    NETWORK_ERROR = "network_error"
    TIMEOUT = "timeout"
    BAD_CONTENT_TYPE = "bad_content_type"
    # vad: speech was found, but every piece of it is shorter than ``vad.min_segment_s``
    SPEECH_TOO_SHORT = "speech_too_short"
    # provenance
    LICENSE_NOT_ALLOWED = "license_not_allowed"  # source license outside ingest.licenses
    TAKEDOWN = "takedown"  # removed by `audiomill takedown` (counted in part stats only; rows are deleted)
    # tokenize
    SILENT = "silent"  # a segment with no signal above tokenize.silence_dbfs
    INVALID_AUDIO = "invalid_audio"  # NaN/inf samples
    # policy: a rule with ``reason: language_uncertain`` (the default policy's min on asr_language_prob)
    LANGUAGE_UNCERTAIN = "language_uncertain"


POLICY_REASONS = frozenset({RejectReason.POLICY.value, RejectReason.LANGUAGE_UNCERTAIN.value})
"""Reasons a filter-policy rule may give; ``curate`` re-decides every reject with one of them."""


class StageName(str, enum.Enum):
    """Names of pipeline stages, as recorded in ``reject_stage`` and timings (the stage classes
    themselves derive from ``pipelines.base.Stage``)."""

    CRAWL = "crawl"
    INGEST = "ingest"
    DECODE = "decode"
    VAD = "vad"
    DIARIZE = "diarize"
    SEGMENT = "segment"
    ASR = "asr"
    QUALITY = "quality"
    POLICY = "policy"
    DEDUP = "dedup"
    WRITE = "write"
    MOS = "mos"
    TOKENIZE = "tokenize"
    SPEECH_MUSIC = "speech_music"


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
ORIG_BANDWIDTH_HZ = "orig_bandwidth_hz"  # q_signal_bandwidth_hz of the whole source at its native rate
ORIG_COLUMNS = (ORIG_SAMPLE_RATE, ORIG_CHANNELS, ORIG_CODEC, ORIG_CONTAINER, ORIG_DURATION_S, ORIG_BANDWIDTH_HZ)
AUDIO = "audio"  # float32 little-endian PCM at SAMPLE_RATE, mono
AUDIO_DURATION_S = "audio_duration_s"  # duration of AUDIO (source before, segment after split)

# -- VAD outputs (per source, before the split into segments) ------------------------------------
VAD_STARTS_S = "vad_starts_s"
VAD_ENDS_S = "vad_ends_s"
VAD_SPEECH_RATIO = "vad_speech_ratio"  # speech seconds / source seconds
VAD_SEGMENT_SPEECH_RATIOS = "vad_segment_speech_ratios"  # per source: list, one per span
VAD_SEGMENT_SPEECH_RATIO = "vad_segment_speech_ratio"  # per segment: frames above threshold

# -- quality metrics per segment (curation/quality.py); policies may name any numeric column ------
Q_SNR_DB = "q_snr_db"  # signal power over noise power (low frame-power percentile), dB
Q_CLIPPING_RATIO = "q_clipping_ratio"  # fraction of samples at full scale or on a peak plateau
Q_LOUDNESS_LUFS = "q_loudness_lufs"  # ITU-R BS.1770-4 gated integrated loudness
Q_DC_OFFSET_FS = "q_dc_offset_fs"  # mean sample value, fraction of full scale (signed)
Q_BANDWIDTH_HZ = "q_bandwidth_hz"  # highest frequency within 50 dB of the spectrum's peak
Q_SIGNAL_BANDWIDTH_HZ = "q_signal_bandwidth_hz"  # the same, where speech stands above the noise floor
Q_SILENCE_RATIO = "q_silence_ratio"  # fraction of 32 ms frames below -60 dBFS
Q_MUSIC_SCORE = "q_music_score"  # share of energy in spectral peaks held >= 0.2 s (0..1)
Q_MOS = "q_mos"  # non-intrusive MOS (1..5); only when a MosEstimator is configured
Q_MOS_SIG = "q_mos_sig"  # DNSMOS P.835 speech signal quality (1..5); null where not computed
Q_MOS_BAK = "q_mos_bak"  # DNSMOS P.835 background noise quality (1..5); q_mos holds OVRL
Q_MOS_MODEL = "q_mos_model"  # which MOS model version produced q_mos*; null where not computed
Q_SPEECH_PROB = "q_speech_prob"  # P(speech) of the trained speech/music/noise classifier (0..1)
QUALITY_COLUMNS = (Q_SNR_DB, Q_CLIPPING_RATIO, Q_LOUDNESS_LUFS, Q_DC_OFFSET_FS, Q_BANDWIDTH_HZ,
                   Q_SILENCE_RATIO, Q_MUSIC_SCORE, Q_SIGNAL_BANDWIDTH_HZ)
"""Computed for every segment; duration (``audio_duration_s``) and speech ratio
(``vad_segment_speech_ratio``) are existing columns that policies use as metrics too."""

# -- diarization (per source before segment; per segment after) ----------------------------------
DIAR_SPEAKERS = "diar_speakers"  # per source: list, one per VAD span (spans are cut at changes)
DIAR_OVERLAPS = "diar_overlaps"  # per source: list of bools, one per span
DIAR_SPEAKER = "diar_speaker"  # per segment: "<source_id>:S<n>", n numbered per source
DIAR_OVERLAP = "diar_overlap"  # per segment: overlapped or ambiguous speech (backend-dependent)
DIAR_NUM_SPEAKERS = "diar_num_speakers"  # per source
DIAR_MODEL = "diar_model"  # diarizer name@version
SPAN_LIST_COLUMNS = {DIAR_SPEAKERS: DIAR_SPEAKER, DIAR_OVERLAPS: DIAR_OVERLAP}
"""Per-source lists with one value per VAD span; segment turns each into a per-segment column."""

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


# -- ASR + language ID outputs (per segment; numeric ones are policy-ready) ----------------------
ASR_TEXT = "asr_text"
ASR_LANGUAGE = "asr_language"  # ISO 639-1 code from language ID on the source's first 30 s of speech
ASR_LANGUAGE_PROB = "asr_language_prob"  # 0..1; null for English-only models (no LID possible)
ASR_AVG_LOGPROB = "asr_avg_logprob"  # mean token log-probability (natural log, <= 0)
ASR_NO_SPEECH_PROB = "asr_no_speech_prob"  # 0..1, Whisper's <|nospeech|> probability
ASR_COMPRESSION_RATIO = "asr_compression_ratio"  # text bytes / zlib bytes; > 2.4 means repetition
ASR_CHARS_PER_S = "asr_chars_per_s"  # characters of text per second of segment audio
ASR_NONSPEECH_TEXT_PROB = "asr_nonspeech_text_prob"  # no-speech prob if text was written, else 0
ASR_WORDS = "asr_words"  # list<struct<word, start_s, end_s, prob>>, times from segment start
ASR_MODEL = "asr_model"  # "name@version" from the registry, or "dirname@sha256:<12 hex>"
ASR_COLUMNS = (ASR_TEXT, ASR_LANGUAGE, ASR_LANGUAGE_PROB, ASR_AVG_LOGPROB, ASR_NO_SPEECH_PROB,
               ASR_COMPRESSION_RATIO, ASR_CHARS_PER_S, ASR_NONSPEECH_TEXT_PROB, ASR_WORDS, ASR_MODEL)

# -- dedup features per segment (curation/dedup/); kept out of index and shards, written to ------
# -- _parts/part-N/features.parquet for the global dedup step -------------------------------------
DEDUP_PREFIX = "dedup_"
DEDUP_PCM_HASH = "dedup_pcm_hash"  # blake2b-128 hex of the int16 PCM
DEDUP_AUDIO_MINHASH = "dedup_audio_minhash"  # list<fixed_size_list<uint32>>: one per ~3 s window
DEDUP_TEXT_MINHASH = "dedup_text_minhash"  # fixed_size_list<uint32>; null without a long transcript
DEDUP_KEEP_SCORE = "dedup_keep_score"  # the configured quality column, highest kept; null if absent
DEDUP_TEXT_COLUMN = ASR_TEXT  # transcript the text dedup reads; absent or empty -> no text dedup
DUPLICATE_OF = "duplicate_of"  # in rejects: key of the kept segment a dropped duplicate repeats
DEDUP_CLUSTER_ID = "cluster_id"  # dedup.parquet: key of the cluster's kept segment
DEDUP_KEPT = "kept"  # dedup.parquet: this segment survived dedup
DEDUP_REASON = "reason"  # dedup.parquet: duplicate reason code (null when kept)


def is_dedup_feature(name: str) -> bool:
    return name.startswith(DEDUP_PREFIX)

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

ORIG_FIELDS = [
    pa.field(ORIG_SAMPLE_RATE, pa.int32()),
    pa.field(ORIG_CHANNELS, pa.int32()),
    pa.field(ORIG_CODEC, pa.string()),
    pa.field(ORIG_CONTAINER, pa.string()),
    pa.field(ORIG_DURATION_S, pa.float64()),
    pa.field(ORIG_BANDWIDTH_HZ, pa.float64()),
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
    + [f for f in SOURCE_FIELDS if f.name not in (PART_SOURCES, PART_FINGERPRINT, READ_URI)]
    + ORIG_FIELDS
    + [f for f in SEGMENT_FIELDS if f.name != KEY]
)
"""One row per kept segment. Later stages append metric columns; readers select by name."""

REJECT_SCHEMA = pa.schema(
    [f for f in SOURCE_FIELDS if f.name not in (PART_SOURCES, PART_FINGERPRINT, READ_URI)]
    + ORIG_FIELDS
    + [pa.field(KEY, pa.string())]
    + REJECT_FIELDS
    + [pa.field(DUPLICATE_OF, pa.string())]
)
"""One row per rejected source (key null) or rejected segment (key set)."""

DEDUP_SCHEMA = pa.schema([pa.field(KEY, pa.string()), pa.field(DEDUP_CLUSTER_ID, pa.string()),
                          pa.field(DEDUP_KEPT, pa.bool_()), pa.field(DEDUP_REASON, pa.string()),
                          pa.field(DUPLICATE_OF, pa.string())])
"""``dedup.parquet``: one row per segment that reached the global dedup step."""

NOT_INDEXED = frozenset({AUDIO, PART_SOURCES, PART_FINGERPRINT, READ_URI, VAD_STARTS_S, VAD_ENDS_S,
                         VAD_SEGMENT_SPEECH_RATIOS} | {f.name for f in REJECT_FIELDS})
"""In-flight columns that never reach index.parquet (audio, part bookkeeping, span lists)."""


def conform(table: pa.Table, target: pa.Schema) -> pa.Table:
    """``target``'s columns first (cast, null-filled when absent), then any extra metric columns."""
    arrays, fields = [], []
    for f in target:
        if f.name in table.column_names:
            arrays.append(table[f.name].cast(f.type))
        else:
            arrays.append(pa.nulls(table.num_rows, f.type))
        fields.append(f.with_nullable(True))
    extra = [c for c in table.column_names if c not in target.names
             and c not in NOT_INDEXED and not is_timing_column(c)]
    for name in extra:
        arrays.append(table[name])
        fields.append(table.schema.field(name))
    return pa.Table.from_arrays(arrays, schema=pa.schema(fields))

# -- provenance per segment (pipelines/provenance.py), from manifest rows, crawl records or defaults --
PROV_LICENSE = "prov_license"  # license as recorded for the source (SPDX id, URL or free text); null unknown
PROV_SOURCE_URL = "prov_source_url"  # where the source was fetched from (crawl) or published (manifest)
PROV_DOMAIN = "prov_domain"  # lower-case host of prov_source_url (or of source_uri when it is a URL)
PROV_FETCHED_UNIX = "prov_fetched_unix"  # when the source was fetched/acquired, Unix seconds
PROVENANCE_COLUMNS = (PROV_LICENSE, PROV_SOURCE_URL, PROV_DOMAIN, PROV_FETCHED_UNIX)
# -- tokenize: sidecar token tables (tokens/<model>/part-*.parquet), one row per segment key ------
TOK_TOKENS = "tok_tokens"  # list<int16>: semantic token ids at tok_fps
TOK_NUM_TOKENS = "tok_num_tokens"
TOK_FPS = "tok_fps"  # tokens per second (25.0)
TOK_MODEL = "tok_model"  # tokenizer "name@version" or "dir@sha256:<12 hex>"
TOK_SKIP_REASON = "tok_skip_reason"  # RejectReason code when a segment got no tokens (it stays kept)
TOK_SKIP_DETAIL = "tok_skip_detail"
TOK_COLUMNS = (TOK_TOKENS, TOK_NUM_TOKENS, TOK_FPS, TOK_MODEL, TOK_SKIP_REASON, TOK_SKIP_DETAIL)
TOKEN_TABLE_SCHEMA = pa.schema([
    pa.field(KEY, pa.string(), nullable=False),
    pa.field(TOK_TOKENS, pa.list_(pa.int16())),
    pa.field(TOK_NUM_TOKENS, pa.int32()),
    pa.field(TOK_FPS, pa.float32()),
    pa.field(TOK_MODEL, pa.string()),
    pa.field(TOK_SKIP_REASON, pa.string()),
    pa.field(TOK_SKIP_DETAIL, pa.string()),
])
"""Rows of a token table: tokens of a segment, or null tokens and a skip reason. Skipping never
rejects the segment itself: tokens are a sidecar, the audio stays in the dataset."""
# -- self-labeling rounds: annotations (labels/round-NNN/annotations.parquet) --------------------
# Every field ``f`` is three columns: ``ann_<f>`` (value), ``ann_<f>_conf`` (0..1, the producing
# model's confidence) and ``ann_<f>_model`` (name@version of what produced it). Numeric companions
# (``ann_pitch_hz``, ``ann_rate_wps``, ``ann_snr_db``) carry the measurement a band was cut from.
ANNOTATION_SCHEMA_VERSION = 1
ANN_SCHEMA_VERSION = "ann_schema_version"
ANN_PREFIX = "ann_"
ANN_CONF_SUFFIX = "_conf"
ANN_MODEL_SUFFIX = "_model"
ANN_TRANSCRIPT = "ann_transcript"
ANN_LANGUAGE = "ann_language"  # ISO 639-1
ANN_GENDER = "ann_gender"  # female | male
ANN_AGE_BAND = "ann_age_band"  # child | adult | senior
ANN_PITCH_BAND = "ann_pitch_band"  # low | mid | high
ANN_PITCH_HZ = "ann_pitch_hz"  # median f0 of voiced frames, Hz
ANN_RATE_BAND = "ann_rate_band"  # slow | normal | fast
ANN_RATE_WPS = "ann_rate_wps"  # words per second of active speech
ANN_STYLE = "ann_style"  # emotion/style: neutral | animated | calm
ANN_SCENE = "ann_scene"  # quiet | noisy | reverberant
ANN_NOISE_TYPE = "ann_noise_type"  # none | white | pink | babble | hum | music
ANN_SNR_BAND = "ann_snr_band"  # lt10 | 10to20 | 20to30 | ge30 (dB)
ANN_SNR_DB = "ann_snr_db"  # estimated speech-to-noise ratio, dB
ANNOTATION_FIELDS = (ANN_TRANSCRIPT, ANN_LANGUAGE, ANN_GENDER, ANN_AGE_BAND, ANN_PITCH_BAND,
                     ANN_RATE_BAND, ANN_STYLE, ANN_SCENE, ANN_NOISE_TYPE, ANN_SNR_BAND)
ANNOTATION_MEASURES = {ANN_PITCH_BAND: ANN_PITCH_HZ, ANN_RATE_BAND: ANN_RATE_WPS, ANN_SNR_BAND: ANN_SNR_DB}


def conf_column(field: str) -> str:
    """Confidence column (0..1) of annotation field ``field``."""
    return f"{field}{ANN_CONF_SUFFIX}"


def model_column(field: str) -> str:
    """Column naming the model version (``name@version``) that produced ``field``."""
    return f"{field}{ANN_MODEL_SUFFIX}"


# -- self-labeling rounds: verification (labels/round-NNN/verify.parquet) ------------------------
ROUND = "round"
VER_CONTENT_STATE_DIST = "ver_content_state_dist"  # DTW over encoder states, original vs re-synthesis (0..2)
VER_CONTENT_MARGIN = "ver_content_margin"  # median DTW to other clips' re-syntheses minus the own one
VER_CONTENT_TOKEN_DIST = "ver_content_token_dist"  # normalized token edit distance (0..1); null: no tokenizer
VER_ROUNDTRIP_WER = "ver_roundtrip_wer"  # ASR(re-synthesis) vs the annotated transcript
VER_ROUNDTRIP_AGREE = "ver_roundtrip_agree"  # share of attribute fields the re-synthesis gives back (0..1)
VER_SPEAKER_COS = "ver_speaker_cos"  # cosine of speaker embeddings, original vs re-synthesis
VER_GENDER_P_ORIG = "ver_gender_p_orig"  # P(labelled gender | original audio)
VER_GENDER_P_SYNTH = "ver_gender_p_synth"  # P(labelled gender | re-synthesis)
VER_PITCH_ORIG_HZ = "ver_pitch_orig_hz"
VER_PITCH_SYNTH_HZ = "ver_pitch_synth_hz"
VER_PITCH_DIFF_ST = "ver_pitch_diff_st"  # |original - re-synthesis| in semitones
VER_RATE_RATIO = "ver_rate_ratio"  # active speech seconds, original / re-synthesis
VER_ACTIVE_ORIG_S = "ver_active_orig_s"  # active speech seconds of the original
VER_SNR_ORIG_DB = "ver_snr_orig_db"
VER_SNR_SYNTH_DB = "ver_snr_synth_db"
VER_DECAY_ORIG = "ver_decay_orig_db_s"  # energy decay rate (reverb measure), dB/s
VER_DECAY_SYNTH = "ver_decay_synth_db_s"
VER_CONTENT_OK = "ver_content_ok"
VER_SPEAKER_OK = "ver_speaker_ok"
VER_SCENE_OK = "ver_scene_ok"
VER_ROUNDTRIP_OK = "ver_roundtrip_ok"
VER_DECISION = "ver_decision"  # accept | reject
VER_REASONS = "ver_reasons"  # comma-separated reason codes (VerifyReason); "" when accepted
VER_GENERATOR = "ver_generator"  # generation model name@version
VER_VERIFIER = "ver_verifier"  # content model (tokenizer / encoder) name@version


class VerifyReason(str, enum.Enum):
    """Why a round rejected a label; stable snake_case codes."""

    CONTENT_MISMATCH = "content_mismatch"  # re-synthesis does not say what the original says
    SPEAKER_MISMATCH = "speaker_mismatch"  # gender/pitch of the original disagree with the profile
    RATE_MISMATCH = "rate_mismatch"
    SCENE_MISMATCH = "scene_mismatch"  # SNR/reverb of the original disagree with the scene label
    ROUNDTRIP_FAILED = "roundtrip_failed"  # re-synthesis does not give back the annotation
    SYNTHESIS_FAILED = "synthesis_failed"  # the generator produced no usable audio
    AUDIO_ERROR = "audio_error"  # the original could not be read
