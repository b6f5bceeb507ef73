"""Typed configuration of a clean job, validated before any work starts.

Load order: defaults < config file (YAML or TOML) < ``--set dotted.key=value`` overrides.
Units are in the field names (``_s`` seconds, ``_bytes`` bytes, ``_hz`` hertz).
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from audiomill import __version__
from audiomill.config_files import ConfigError, apply_override, read_config_file
from audiomill.schema import Q_MOS


DEFAULT_POLICY = "default"
"""``policy`` value naming the filter policy shipped with audiomill (curation/default_policy.yaml)."""


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class IngestConfig(_Section):
    """How inputs are listed and grouped into parts (the unit of work and of resume)."""

    include: list[str] = Field(
        default_factory=lambda: ["*.wav", "*.flac", "*.mp3", "*.ogg", "*.opus", "*.m4a", "*.aac",
                                 "*.webm", "*.mp4", "*.mkv", "*.aiff", "*.aif", "*.au", "*.wma"],
        description="glob patterns (on the file name) a listed file must match; [] keeps all")
    exclude: list[str] = Field(default_factory=list, description="glob patterns to skip")
    part_size: int = Field(1000, ge=1, le=100_000,
                           description="most sources per part (a part is one worker's unit of work and of "
                                       "resume; shards never span parts); part_target_bytes is what sizes "
                                       "parts, this only bounds a part's source list. It was 4 until "
                                       "2026-12-04: 597 short files made 150 parts and 145 shards of 0.1 MiB")
    include_datasets: bool = Field(False, description="list the files of audiomill datasets found under "
                                   "an input (a dir with an audiomill manifest.json, _parts/ or a lock); "
                                   "off: such dirs are skipped whole, so a job never reads its own output")
    manifest_root: str | None = Field(None, description="dir or s3:// prefix every manifest row must resolve "
                                      "inside (absolute paths too); null: the manifest's own folder")
    manifest_absolute_paths: bool = Field(False, description="accept absolute paths and URIs in manifest rows "
                                          "wherever they point (trusted manifests only)")
    part_target_bytes: int | None = Field(
        16 * 1024**2, ge=1, description="input bytes per part: a part closes before the source that would "
                                        "take it past this (a bigger source is a part of its own), so a "
                                        "part's memory (its decoded audio: ~17 min of 16 kHz FLAC, 35 min "
                                        "of 64 kbps MP3) is bounded whether files are 2 s or 2 h, and an "
                                        "hour of input makes several parts for the workers to share; null "
                                        "cuts by part_size only")
    licenses: list[str] | None = Field(None, description="allowed source licenses (case-insensitive, e.g. "
                                       "[CC0-1.0, CC-BY-4.0, unknown]); others are rejected "
                                       "license_not_allowed; null allows any")


class DecodeConfig(_Section):
    """Limits enforced before and while decoding; violations become reject rows."""

    max_file_bytes: int = Field(2 * 1024**3, gt=0)
    max_duration_s: float = Field(3 * 3600.0, gt=0)
    min_duration_s: float = Field(0.1, ge=0)
    allowed_sample_rates_hz: list[int] | None = Field(
        None, description="original sample rates accepted; null accepts any in 8 kHz..384 kHz")
    max_channels: int = Field(32, ge=1)


class VadConfig(_Section):
    """silero-vad thresholds and the segment length policy (seconds)."""

    threshold: float = Field(0.5, gt=0, lt=1)
    min_speech_s: float = Field(0.25, ge=0, description="shorter speech bursts are ignored")
    min_silence_s: float = Field(0.3, ge=0, description="shorter pauses do not end a segment")
    pad_s: float = Field(0.1, ge=0, description="padding added on both sides of speech")
    merge_gap_s: float = Field(0.5, ge=0, description="segments closer than this are merged")
    min_segment_s: float = Field(1.0, gt=0, description="shorter segments are dropped")
    max_segment_s: float = Field(30.0, gt=0, description="longer speech splits at the quietest point")
    graph: Literal["gemm", "stock"] = Field(
        "gemm", description="gemm: silero's graph with its convolutions as matrix products (~3x faster, "
        "probabilities equal to ~1e-5); stock: the shipped graph as it is")

    @model_validator(mode="after")
    def _check_lengths(self) -> "VadConfig":
        if self.max_segment_s < 2 * self.min_segment_s:
            raise ValueError("max_segment_s must be at least twice min_segment_s")
        return self


class ShardConfig(_Section):
    """WebDataset shard sizing. Shards never span parts, so a part is rewritten alone on resume."""

    target_bytes: int = Field(256 * 1024**2, gt=0, description="a shard closes past this size")
    max_samples: int = Field(10_000, gt=0, description="a shard closes at this many segments")
    flac_compression: float = Field(0.5, ge=0, le=1)


class RunnerConfig(_Section):
    """Where stages run. ``ray`` starts (or joins) Ray; ``local`` runs in this process;
    ``processes`` runs parts on a pool of worker processes on this machine, without Ray (the fast
    path for a job on one machine: Ray's start and its own processes cost ~10 s on a small box;
    above ``dedup.ray_min_segments`` its global dedup step still runs on Ray Data, on a local Ray
    started for that step). ``auto`` (default) runs on Ray when an ``address`` is set; else a job
    of one part in this process, and a bigger one on Ray when a stage needs GPUs (a GPU actor
    pool) or on the processes runner. The outputs are the same bytes on every runner (``test_clean_e2e``,
    ``test_process_runner``)."""

    kind: Literal["auto", "ray", "local", "processes"] = "auto"
    num_cpus: int | None = Field(None, ge=1, description="CPUs for a local Ray; null = all")
    address: str | None = Field(None, description="Ray address to join; null starts one in-process")
    actors: int | None = Field(None, ge=1, description="CPU actor pool size (worker processes with "
                                                       "processes); null = the cluster's CPUs")
    actor_cpus: float = Field(1.0, gt=0, description="CPUs each CPU-stage actor reserves")
    actor_memory_bytes: int | None = Field(None, gt=0, description="memory each actor reserves (Ray "
                                                                    "schedules by it); null = none")


class CrawlConfig(_Section):
    """``audiomill crawl``: which URLs may be fetched, how politely, and what a download may be.

    Not part of the clean fingerprint: how files were fetched does not change what clean makes
    of them.
    """

    allowed_domains: list[str] = Field(
        default_factory=list, description="hosts that may be fetched, subdomains included "
                                          "(e.g. example.org); required unless allow_any_domain")
    allow_any_domain: bool = Field(
        False, description="fetch from any host; private/loopback IPs still need allowed_domains")
    user_agent: str = Field(f"audiomill/{__version__} (+https://example.invalid/set-crawl-user-agent)",
                            min_length=1, description="sent with every request; put your contact URL in")
    respect_robots: bool = Field(True, description="obey robots.txt (fetched once per host and run)")
    per_host_rate: float = Field(1.0, gt=0, description="requests per second to one host")
    per_host_concurrency: int = Field(2, ge=1, description="requests in flight to one host")
    concurrency: int = Field(16, ge=1, description="requests in flight over all hosts")
    timeout_s: float = Field(30.0, gt=0, description="connect timeout and longest wait for any read")
    max_fetch_s: float = Field(600.0, gt=0, description="longest one download may take")
    retries: int = Field(3, ge=0, description="extra tries after a timeout, network error, 429 or 5xx")
    backoff_s: float = Field(1.0, ge=0, description="wait before the first retry; doubles each retry")
    backoff_max_s: float = Field(60.0, ge=0, description="longest wait between tries (also caps Retry-After)")
    backoff_jitter: float = Field(0.5, ge=0, le=1, description="each wait is scaled by 1 + uniform(-j, j)")
    seed: int | None = Field(None, description="seed of the jitter; set it for reproducible waits")
    max_bytes: int = Field(2 * 1024**3, gt=0, description="longer bodies are cut off and rejected as too_large")
    max_page_bytes: int = Field(5 * 1024**2, gt=0, description="longest listing page read")
    allowed_content_types: list[str] = Field(
        default_factory=lambda: ["audio/*", "application/ogg"],
        description="accepted audio types; application/octet-stream also passes with an audio extension")
    audio_extensions: list[str] = Field(
        default_factory=lambda: [".wav", ".flac", ".mp3", ".ogg", ".oga", ".opus", ".m4a", ".aac",
                                 ".webm", ".mp4", ".mkv", ".aiff", ".aif", ".au", ".wma"],
        description="URL path endings that mark audio links on listing pages")
    max_redirects: int = Field(5, ge=0, description="redirect hops followed, each re-checked")
    follow_links: bool = Field(True, description="an HTML entry is a page whose audio links are fetched")
    max_links_per_page: int = Field(1000, ge=1)
    fetch_on: Literal["driver", "ray"] = Field(
        "driver", description="driver: threads in this process; ray: one Ray task per URL, per-host "
                              "politeness held by one actor across the cluster (`crawl --address` sets it)")

    @model_validator(mode="before")
    @classmethod
    def _normalize(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        data = dict(data)
        domains = data.get("allowed_domains")
        if isinstance(domains, str):
            domains = [domains]
        if isinstance(domains, list):
            for domain in domains:
                if not isinstance(domain, str) or not domain.strip() or any(
                        c in domain for c in "/@ ?#") or "://" in domain:
                    raise ValueError(f"allowed_domains: {domain!r} is not a host name like example.org")
            data["allowed_domains"] = [d.strip().lower().removeprefix("*.").strip(".") for d in domains]
        for key in ("allowed_content_types", "audio_extensions"):
            if isinstance(data.get(key), list):
                data[key] = [str(v).strip().lower() for v in data[key]]
        return data


class AsrConfig(_Section):
    """ASR + language ID with faster-whisper on the segments VAD produced (off by default).

    ``model`` is a local CTranslate2 Whisper directory or a registry reference (``name@3``,
    ``name@production``, ``name@latest``; see ``models.registry``).
    """

    enabled: bool = False
    model: str = Field("", description="CTranslate2 Whisper dir, or registry ref name@version|stage")
    device: Literal["cpu", "cuda"] = "cpu"
    compute_type: str | None = Field(None, description="CTranslate2 compute type; null = int8 on "
                                                       "cpu, float16 on cuda")
    beam_size: int = Field(5, ge=1, le=16)
    batch_size: int | None = Field(None, ge=1, le=512, description="segments per model call "
                                   "(sorted by duration); null = 4 on cpu, 32 on cuda")
    languages: list[str] | None = Field(None, description="allowed language codes, e.g. [en, de]; "
                                                          "null allows any")
    on_other_language: Literal["reject", "tag"] = Field(
        "reject", description="segments in other languages: reject (reason `language`) or keep")
    word_timestamps: bool = Field(False, description="add asr_words (word, start_s, end_s, prob)")
    max_new_tokens: int | None = Field(None, ge=1, le=440, description="tokens decoded per 30 s "
                                                                      "window; null = model limit")
    num_gpus: float = Field(1.0, gt=0, le=8, description="GPUs per ASR actor on cuda; fractions "
                                                         "share a GPU between actors")
    cpu_threads: int = Field(1, ge=1, le=256, description="CTranslate2 threads per ASR worker")
    pack_s: float | None = Field(None, ge=5, le=30, description="pack short segments end to end into "
                                 "windows of this many seconds: fewer 30 s Whisper passes (2-4x less "
                                 "CPU on 1.5-5.5 s segments), but a word near a segment edge can move "
                                 "to its neighbour, context changes the text (WER +0.03 on espeak) and "
                                 "no-speech scores are per window; null = one segment per window")

    @model_validator(mode="after")
    def _check_model(self) -> "AsrConfig":
        if self.enabled and not self.model.strip():
            raise ValueError("model is required when asr.enabled (a CTranslate2 Whisper dir or "
                             "a registry ref such as whisper-small@production)")
        return self


ASR_RESOURCE_FIELDS = frozenset({"num_gpus", "cpu_threads"})
"""AsrConfig fields that change where ASR runs, not what it writes (left out of fingerprints)."""


class DiarizeConfig(_Section):
    """Speaker diarization per source, after VAD and before segment (off by default).

    VAD spans are cut at speaker changes, so each segment holds one speaker (``diar_speaker``).
    ``fallback`` is embedded (``embedding=resemblyzer``: d-vectors from the weights in the
    ``resemblyzer`` wheel + clustering; ``spectral``: the older spectral statistics, no weights);
    ``pyannote`` loads a local pipeline directory (``pip install audiomill[diarize]``).
    """

    enabled: bool = False
    backend: Literal["fallback", "pyannote"] = "fallback"
    pipeline_dir: str = Field("", description="pyannote: local dir with config.yaml (no hub, no token)")
    num_speakers: int | None = Field(None, ge=1, le=64, description="known speakers per source; "
                                     "null estimates it")
    max_speakers: int = Field(8, ge=1, le=64)
    embedding: Literal["resemblyzer", "spectral"] = Field("resemblyzer", description="fallback: "
                                                          "window embedding")
    threshold: float | None = Field(None, gt=0, le=2, description="fallback: distance between "
                                    "cluster averages at which clustering stops; null = the "
                                    "embedding's calibrated default")
    min_turn_s: float = Field(1.0, ge=0, description="shorter speaker turns join a neighbour instead "
                              "of becoming a segment")
    drop_overlap: bool = Field(False, description="drop spans flagged as overlapped speech")
    device: Literal["cpu", "cuda"] | None = Field(None, description="pyannote; null = cuda if present")

    @model_validator(mode="after")
    def _check_pipeline(self) -> "DiarizeConfig":
        if self.enabled and self.backend == "pyannote" and not self.pipeline_dir.strip():
            raise ValueError("pipeline_dir is required when diarize.backend=pyannote (a local "
                             "pyannote pipeline directory holding config.yaml)")
        return self


class TokenizeConfig(_Section):
    """Semantic tokens per kept segment with a trained tokenizer (``audiomill tokenizer train``).

    Tokens go to sidecar tables ``tokens/<model>/part-*.parquet`` keyed by segment key; shards
    are never rewritten. Segments too short, silent or with NaN samples get a reason instead.
    """

    enabled: bool = False
    tokenizer: str = Field("", description="tokenizer dir or registry ref name@version|stage")
    min_duration_s: float = Field(0.2, ge=0.04, description="shorter segments get too_short")
    silence_dbfs: float = Field(-60.0, le=0, description="segments whose loudest 40 ms frame is "
                                "below this RMS level (dBFS) get silent")
    threads: int = Field(1, ge=1, le=256, description="CTranslate2 threads per tokenize worker")
    device: Literal["cpu", "cuda"] = "cpu"

    @model_validator(mode="after")
    def _check_tokenizer(self) -> "TokenizeConfig":
        if self.enabled and not self.tokenizer.strip():
            raise ValueError("tokenizer is required when tokenize.enabled (a tokenizer dir or a "
                             "registry ref such as speech-tokens@production)")
        return self


MODEL_CACHE_DIR = "~/.cache/audiomill/models"
"""Default local directory for model copies (remote registry artifacts, the rebuilt VAD graph)."""


class ModelsConfig(_Section):
    """Where versioned models live (``audiomill models``) and where remote ones are cached."""

    registry: str = Field("", description="registry root (dir or s3://); empty = the "
                                          "AUDIOMILL_MODEL_REGISTRY environment variable")
    cache_dir: str = Field(MODEL_CACHE_DIR, description="local copies of s3 models (and derived model files)")


class DedupConfig(_Section):
    """Global deduplication after all parts: exact PCM, near-duplicate audio, repeated transcripts.

    All of it is in the clean fingerprint: the global step removes dropped segments from shards,
    so a setting that could bring one back must redo the parts that held it.
    """

    enabled: bool = True
    exact: bool = Field(True, description="drop segments whose decoded PCM is identical")
    audio: bool = Field(True, description="drop re-encoded/resampled/trimmed/noisy or contained audio")
    text: bool = Field(True, description="drop repeated transcripts (needs asr_text; no-op without)")
    num_perm: int = Field(64, ge=8, le=512, description="MinHash permutations per signature")
    bands: int = Field(21, ge=1, description="LSH bands; rows per band = num_perm // bands")
    window_threshold: float = Field(0.25, gt=0, le=1, description="estimated Jaccard at which two "
                                    "~3 s audio windows match")
    min_coverage: float = Field(0.8, gt=0, le=1, description="share of a segment's windows found in "
                                "the other for it to count as contained (both ways: near-duplicate)")
    text_threshold: float = Field(0.7, gt=0, le=1, description="estimated Jaccard of word 5-grams")
    text_min_words: int = Field(8, ge=1, description="shorter transcripts are never text duplicates")
    keep_score: str | None = Field(Q_MOS, description="q_mos (default) or null: a cluster keeps the "
                                   "highest quality keep score (curation/dedup/keep_score.py; q_mos is "
                                   "one of its terms); another column: its raw value instead, null rows "
                                   "falling back to the longest segment")
    max_bucket: int = Field(64, ge=2, description="LSH buckets larger than this emit linear pairs")
    ray_min_segments: int = Field(20_000, ge=0, description="with the ray and processes runners, fewer "
                                  "segments are deduplicated in the driver (Ray Data's start-up costs more "
                                  "than the work), more on Ray Data")
    index: str | None = Field(None, description="cross-run dedup index (dir or s3://): new segments "
                              "are checked against it and this run's kept segments appended")

    @model_validator(mode="after")
    def _check_bands(self) -> "DedupConfig":
        if self.bands > self.num_perm:
            raise ValueError(f"bands ({self.bands}) must not exceed num_perm ({self.num_perm})")
        return self


class ProvenanceDefault(_Section):
    """Provenance of sources under one input that their manifest row or crawl record lacks."""

    prefix: str = Field(min_length=1, description="applies to sources whose URI starts with this "
                                                  "(e.g. an input directory as given)")
    license: str | None = None
    source_url: str | None = Field(None, description="where these sources were obtained (URL)")
    fetched_unix: float | None = Field(None, description="when they were obtained, Unix seconds")


class ProvenanceConfig(_Section):
    """Per-input provenance defaults; the longest matching prefix wins, recorded values win over it."""

    defaults: list[ProvenanceDefault] = Field(default_factory=list)
class MosConfig(_Section):
    """DNSMOS (``q_mos`` = OVRL, ``q_mos_sig``, ``q_mos_bak``) from the ONNX model in `speechmos`.

    It costs about one model pass per 9 s of audio (~10x realtime per core, vs ~200x for the rest
    of quality), so by default it runs on a deterministic sample (by key hash) for the dashboard;
    ``full`` scores every segment and lets MOS take part in the dedup keep score.
    """

    coverage: Literal["off", "sample", "full"] = "sample"
    sample_share: float = Field(0.01, ge=0, le=1, description="share of segments scored with 'sample'; "
                                "DNSMOS runs ~25x realtime on one core, so 5% cost 2 ms per audio second "
                                "(half the 250x-per-core budget of the whole job) where 1% costs 0.4 ms and "
                                "still scores 36 s of every hour of kept audio")
    hop_s: float = Field(9.01, gt=0, description="hop between 9.01 s DNSMOS windows of one segment")
    threads: int = Field(1, ge=1, description="onnxruntime threads per worker")

    @field_validator("coverage", mode="before")
    @classmethod
    def _yaml_off(cls, value: Any) -> Any:
        """YAML reads a bare ``off`` as false: ``--set mos.coverage=off`` must still mean "off"."""
        return "off" if value is False else value


class SpeechMusicConfig(_Section):
    """``q_speech_prob`` per segment from the project's trained speech/music/noise classifier.

    Off by default. Make a model with ``audiomill models train-speech-music`` (trained on generated
    speech, music and noise, about a minute on one core) and point ``model`` at it. Then a policy
    can use ``q_speech_prob: {min: 0.5}`` where the tonal score confuses reverberant speech with
    music (``benchmarks/eval_set.py`` measures both on real recordings).
    """

    enabled: bool = False
    model: str = Field("", description="registry ref (speech-music@production) or a model directory")

    @model_validator(mode="after")
    def _check_model(self) -> "SpeechMusicConfig":
        if self.enabled and not self.model.strip():
            raise ValueError("model is required when speech_music.enabled (e.g. speech-music@production, "
                             "made by `audiomill models train-speech-music`)")
        return self


class CleanConfig(_Section):
    """A whole ``audiomill clean`` job."""

    inputs: list[str] = Field(default_factory=list, description="dirs, files, manifests, tars, s3://")
    output: str = ""
    ingest: IngestConfig = IngestConfig()
    decode: DecodeConfig = DecodeConfig()
    vad: VadConfig = VadConfig()
    shard: ShardConfig = ShardConfig()
    runner: RunnerConfig = RunnerConfig()
    crawl: CrawlConfig = CrawlConfig()
    asr: AsrConfig = AsrConfig()
    models: ModelsConfig = ModelsConfig()
    dedup: DedupConfig = DedupConfig()
    diarize: DiarizeConfig = DiarizeConfig()
    provenance: ProvenanceConfig = ProvenanceConfig()
    mos: MosConfig = MosConfig()
    speech_music: SpeechMusicConfig = SpeechMusicConfig()
    tokenize: TokenizeConfig = TokenizeConfig()
    policy: str | None = Field(DEFAULT_POLICY, description="filter policy YAML (path or s3://); 'default' "
                               "is the one shipped with audiomill; null keeps every segment (metrics are "
                               "still computed)")

    def fingerprint(self, policy_digest: str | None) -> str:
        """Hash of everything that changes the output bytes; stored in part markers.

        Runner settings and the input list itself are excluded: parts are identified by their
        own source lists, and how they run does not change what they produce. ``policy_digest``
        is the loaded policy's ``digest()`` (``jobs.prepare`` loads it once), so editing the
        policy file redoes parts; this method does no I/O.
        """
        # tokenize: token tables are sidecars with their own per-part fingerprints (jobs.tokenize)
        relevant = self.model_dump(exclude={"runner", "inputs", "output", "crawl", "models", "tokenize"})
        # ASR settings matter only when it runs; registry refs are pinned to versions first
        asr = relevant.pop("asr")
        if self.asr.enabled:
            relevant["asr"] = {k: v for k, v in asr.items() if k not in ASR_RESOURCE_FIELDS
                               and not (k == "pack_s" and v is None)}  # unpacked: as before pack_s
        diarize = relevant.pop("diarize")
        if self.diarize.enabled:
            relevant["diarize"] = {k: v for k, v in diarize.items() if k != "device"}
        speech_music = relevant.pop("speech_music")  # off: the fingerprint is what it was before it existed
        if self.speech_music.enabled:
            relevant["speech_music"] = speech_music
        relevant["policy"] = policy_digest
        text = json.dumps(relevant, sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()[:16]


def load_config(path: str | Path | None = None, overrides: list[str] | None = None,
                **top_level: Any) -> CleanConfig:
    """Build a validated CleanConfig; raises ConfigError naming the offending field."""
    data: dict[str, Any] = read_config_file(path) if path else {}
    for key, value in top_level.items():
        if value is not None:
            data[key] = value
    for assignment in overrides or []:
        apply_override(data, assignment)
    try:
        return CleanConfig.model_validate(data)
    except ValidationError as err:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or '(top level)'}: {e['msg']}" for e in err.errors())
        raise ConfigError(f"invalid config: {problems}") from err
