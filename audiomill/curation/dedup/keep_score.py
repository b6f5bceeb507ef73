"""Which copy of a duplicate cluster to keep: a quality score per segment, higher is better.

Before this score existed, a cluster kept its longest member, so a 64 kbps MP3 (encoder padding
makes it longer) or a noisy copy beat the pristine original. The score adds terms that each lie in
0..1 (clipping subtracts), weighted so a clear defect on one axis outweighs small measurement noise
on the others:

- bandwidth: ``q_signal_bandwidth_hz`` (``q_bandwidth_hz`` where absent) over the 8 kHz Nyquist
  limit of the stored 16 kHz audio (a telephone-band or resampled-down copy loses up to half a
  point; noise filling an empty band does not count as bandwidth);
- native band: ``orig_bandwidth_hz`` (the decoder's measurement at the source's own rate) above
  8 kHz, over 8 kHz: the bandwidth scale continued past what the stored audio holds, so a 22 or
  48 kHz original beats its copy downsampled to 16 kHz, which the stored audio cannot tell apart;
- rate use (weight 0.25): ``orig_bandwidth_hz`` over the source's own Nyquist frequency, both
  capped at 8 kHz: an 8 kHz original fills its 4 kHz band, its copy upsampled to 16 kHz uses half
  of its band (a resampler cannot add content, so a band far below the rate is the trace of an
  upsampling). A small weight: a source recorded band-limited in a wide container looks the same;
- SNR: ``q_snr_db`` clipped to 0..40 dB, over 40 (a copy with noise at 10 dB loses 0.75);
- clipping: ``q_clipping_ratio`` over 1 % of samples, capped at 1, weight 2;
- source codec: 1 for a lossless codec (PCM, FLAC, ALAC, WavPack...), ``0.6 * kbps / 320`` for a
  lossy one (file bytes over source duration; even a 320 kbps MP3 ranks below lossless), 0.5 when
  the codec is unknown;
- MOS (weight 2): the configured ``dedup.keep_score`` column (``q_mos`` by default) mapped from 1..5
  to 0..1 where it was computed; a segment without it gets the neutral 0.5, so compute MOS for every
  member of a cluster (``quality.mos_coverage``) when MOS should decide ties.

A missing metric contributes 0 (or the neutral value above), never NaN, and the score is rounded to
1e-6 so identical samples tie exactly; ties then go to the longest segment, then the smallest key
(``cluster.keep_order``), which is deterministic across runners.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from audiomill import schema

NYQUIST_HZ = schema.SAMPLE_RATE / 2
SNR_CEILING_DB = 40.0
CLIPPING_FULL_PENALTY = 0.01  # share of clipped samples that costs the whole clipping term
LOSSY_MAX_SHARE = 0.6  # a lossy source's codec term at LOSSY_FULL_KBPS and above
LOSSY_FULL_KBPS = 320.0
UNKNOWN_CODEC_TERM = 0.5
NEUTRAL_MOS_TERM = 0.5
WEIGHTS = {"bandwidth": 1.0, "native_band": 1.0, "rate_use": 0.25, "snr": 1.0, "clipping": 2.0, "codec": 1.0,
           "mos": 2.0}
LOSSLESS_CODECS = frozenset({
    "flac", "alac", "wavpack", "ape", "tta", "mlp", "truehd", "shorten", "tak",
    "pcm_s8", "pcm_u8", "pcm_s16le", "pcm_s16be", "pcm_s24le", "pcm_s24be", "pcm_s32le", "pcm_s32be",
    "pcm_f32le", "pcm_f32be", "pcm_f64le", "pcm_f64be", "pcm_u16le", "pcm_u16be",
})


def _column(table: pa.Table, name: str | None) -> np.ndarray:
    """float64 values of a numeric column, NaN where null or absent."""
    if not name or name not in table.column_names:
        return np.full(table.num_rows, np.nan)
    return table[name].cast(pa.float64()).to_numpy(zero_copy_only=False).astype(np.float64)


def codec_terms(table: pa.Table) -> np.ndarray:
    """Per row: 1 lossless, LOSSY_MAX_SHARE * min(1, kbps / LOSSY_FULL_KBPS) lossy, 0.5 unknown."""
    if schema.ORIG_CODEC not in table.column_names:
        return np.full(table.num_rows, UNKNOWN_CODEC_TERM)
    codecs = table[schema.ORIG_CODEC].to_pylist()
    kbps = _column(table, schema.SOURCE_BYTES) * 8 / 1000 / _column(table, schema.ORIG_DURATION_S)
    lossy = LOSSY_MAX_SHARE * np.clip(np.nan_to_num(kbps, nan=0.0, posinf=0.0) / LOSSY_FULL_KBPS, 0, 1)
    terms = np.full(table.num_rows, UNKNOWN_CODEC_TERM)
    for i, codec in enumerate(codecs):
        if codec:
            terms[i] = 1.0 if codec.lower() in LOSSLESS_CODECS else lossy[i]
    return terms


def score_terms(table: pa.Table, mos_column: str | None = schema.Q_MOS) -> dict[str, np.ndarray]:
    """Each term of the keep score per row (unweighted, see the module docstring)."""
    measured = _column(table, schema.Q_SIGNAL_BANDWIDTH_HZ)
    measured = np.where(np.isnan(measured), _column(table, schema.Q_BANDWIDTH_HZ), measured)
    bandwidth = np.clip(measured / NYQUIST_HZ, 0, 1)
    snr = np.clip(_column(table, schema.Q_SNR_DB), 0, SNR_CEILING_DB) / SNR_CEILING_DB
    clipping = np.clip(_column(table, schema.Q_CLIPPING_RATIO) / CLIPPING_FULL_PENALTY, 0, 1)
    mos = np.clip((_column(table, mos_column) - 1) / 4, 0, 1)
    native = _column(table, schema.ORIG_BANDWIDTH_HZ)
    own_band = np.minimum(_column(table, schema.ORIG_SAMPLE_RATE) / 2, NYQUIST_HZ)
    with np.errstate(invalid="ignore", divide="ignore"):
        rate_use = np.clip(np.minimum(native, NYQUIST_HZ) / own_band, 0, 1)
    return {
        "bandwidth": np.nan_to_num(bandwidth, nan=0.0),
        "native_band": np.nan_to_num(np.clip((native - NYQUIST_HZ) / NYQUIST_HZ, 0, 1), nan=0.0),
        "rate_use": np.nan_to_num(rate_use, nan=0.0, posinf=0.0, neginf=0.0),
        "snr": np.nan_to_num(snr, nan=0.0),
        "clipping": -np.nan_to_num(clipping, nan=0.0),
        "codec": codec_terms(table),
        "mos": np.where(np.isnan(mos), NEUTRAL_MOS_TERM, mos),
    }


def keep_scores(table: pa.Table, mos_column: str | None = schema.Q_MOS) -> np.ndarray:
    """The weighted keep score of every row (float64, rounded to 1e-6)."""
    terms = score_terms(table, mos_column)
    total = sum(WEIGHTS[name] * values for name, values in terms.items())
    return np.round(np.asarray(total, dtype=np.float64), 6)
