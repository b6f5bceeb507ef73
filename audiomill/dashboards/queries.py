"""Aggregations the dashboard pages show, each one lazy polars query over parquet.

Every function takes a ``Dataset`` and returns small results (dicts or polars frames of at most a
few thousand rows): counts, sums, histograms, quantiles, a page of rows. Durations are seconds in
the tables and hours in the results (``*_hours``).
"""

from __future__ import annotations

import io
import json
from dataclasses import dataclass
from typing import Any

import polars as pl

from audiomill import layout, schema, storage
from audiomill.dashboards.data import (Dataset, Rule, duration_expr, label_round_files, metric_columns,
                                       token_set_files)

HISTOGRAM_BINS = 40
OUTLIER_Z = 3.5  # robust z-score (median/MAD) above which a shard's mean metric is an outlier
MIN_SHARDS_FOR_OUTLIERS = 8  # fewer shards give no meaningful median/MAD
_MAD_TO_SIGMA = 1.4826


def overview(ds: Dataset) -> dict[str, Any]:
    """Headline numbers: manifest counts and hours, plus what the index itself holds."""
    index_schema = ds.index_schema()
    row = ds.index().select(
        pl.len().alias("segments"),
        duration_expr(index_schema).sum().alias("seconds"),
        pl.col(schema.SOURCE_ID).n_unique().alias("sources"),
        pl.col(schema.SHARD).n_unique().alias("shards"),
    ).collect().row(0, named=True)
    counts = ds.manifest.get("counts", {})
    hours_in = ds.manifest.get("hours_in")
    hours_out = (row["seconds"] or 0.0) / 3600
    inputs = counts.get("inputs")
    return {
        "segments": row["segments"],
        "hours_out": hours_out,
        "hours_in": hours_in,
        "kept_hours_ratio": hours_out / hours_in if hours_in else None,
        "inputs": inputs,
        "kept_sources": row["sources"],
        "rejected_sources": counts.get("rejected_sources"),
        "kept_sources_ratio": row["sources"] / inputs if inputs else None,
        "shards": row["shards"],
        "manifest_hours_out": ds.manifest.get("hours_out"),
        "manifest_segments": counts.get("segments"),
        "accounting_ok": (ds.manifest.get("accounting") or {}).get("ok"),
        "wall_s": ds.manifest.get("wall_s"),
    }


def stage_throughput(ds: Dataset) -> pl.DataFrame:
    """One row per stage from ``manifest["stages"]``: worker seconds and x realtime."""
    rows = []
    for name, stats in (ds.manifest.get("stages") or {}).items():
        if isinstance(stats, dict):
            rows.append({"stage": name, "worker_s": stats.get("worker_s", stats.get("wall_s")),
                         "x_realtime": stats.get("x_realtime_per_worker", stats.get("x_realtime"))})
    return pl.DataFrame(rows, schema={"stage": pl.String, "worker_s": pl.Float64, "x_realtime": pl.Float64})


def metric_summary(ds: Dataset) -> pl.DataFrame:
    """Per metric column: non-null count, min, p5, median, mean, p95, max (one scan)."""
    metrics = metric_columns(ds.index_schema())
    if not metrics:
        return pl.DataFrame()
    stats = {"count": lambda c: c.count(), "min": lambda c: c.min(), "p5": lambda c: c.quantile(0.05),
             "median": lambda c: c.median(), "mean": lambda c: c.mean(), "p95": lambda c: c.quantile(0.95),
             "max": lambda c: c.max()}
    finite = {m: _finite(m, ds.index_schema()) for m in metrics}
    row = ds.index().select(
        [fn(finite[m]).cast(pl.Float64).alias(f"{m}\t{s}") for m in metrics for s, fn in stats.items()]
    ).collect().row(0, named=True)
    return pl.DataFrame([{"metric": m} | {s: row[f"{m}\t{s}"] for s in stats} for m in metrics])


def histograms(ds: Dataset, metrics: list[str], bins: int = HISTOGRAM_BINS) -> dict[str, pl.DataFrame]:
    """Per metric, counts of kept (index) and, where rejects carry the column, rejected rows in
    ``bins`` equal-width bins over both: columns ``bin_start, bin_end, status, count, hours``
    (a constant column has one bin with ``bin_start == bin_end``)."""
    index_schema, rejects_schema = ds.index_schema(), ds.rejects_schema()
    frames = {"kept": (ds.index(), index_schema), "rejected": (ds.rejects(), rejects_schema)}
    ranges = _ranges(frames, metrics)
    result = {}
    for metric in metrics:
        low, high = ranges.get(metric, (None, None))
        if low is None:
            continue
        width = (high - low) / bins  # 0 for a constant column: one bin [low, low]
        parts = []
        for status, (frame, table_schema) in frames.items():
            if metric not in table_schema.names():
                continue
            value = _finite(metric, table_schema)
            number = ((value - low) / width).floor().clip(0, bins - 1).cast(pl.Int64) if width else pl.lit(0, pl.Int64)
            parts.append(frame.filter(value.is_not_null()).group_by(number.alias("bin")).agg(
                pl.len().alias("count"), (duration_expr(table_schema).sum() / 3600).alias("hours"),
            ).with_columns(pl.lit(status).alias("status")))
        counts = pl.concat(pl.collect_all(parts)).sort("status", "bin")
        result[metric] = counts.with_columns(
            (low + pl.col("bin") * width).alias("bin_start"), (low + (pl.col("bin") + 1) * width).alias("bin_end"),
        ).select("bin_start", "bin_end", "status", "count", "hours")
    return result


def _ranges(frames: dict[str, tuple[pl.LazyFrame, pl.Schema]], metrics: list[str]) -> dict[str, tuple]:
    lows: dict[str, list[float]] = {}
    highs: dict[str, list[float]] = {}
    for frame, table_schema in frames.values():
        present = [m for m in metrics if m in table_schema.names()]
        if not present:
            continue
        row = frame.select([_finite(m, table_schema).min().cast(pl.Float64).alias(f"{m}\tmin") for m in present]
                           + [_finite(m, table_schema).max().cast(pl.Float64).alias(f"{m}\tmax") for m in present]
                           ).collect().row(0, named=True)
        for m in present:
            if row[f"{m}\tmin"] is not None:
                lows.setdefault(m, []).append(row[f"{m}\tmin"])
                highs.setdefault(m, []).append(row[f"{m}\tmax"])
    return {m: (min(lows[m]), max(highs[m])) for m in lows}


def _finite(metric: str, table_schema: pl.Schema) -> pl.Expr:
    """The column as float with NaN/inf as null (a metric can be undefined for a segment)."""
    column = pl.col(metric).cast(pl.Float64)
    if table_schema[metric].is_float():
        return pl.when(column.is_finite()).then(column)
    return column


def rule_hours(ds: Dataset, rules: list[Rule]) -> pl.DataFrame:
    """Per policy rule: kept hours, kept rows that would fail it now, and rejected rows/hours it
    accounts for (by the metric's value when rejects carry it, else by ``metric=`` in the reject
    detail). For datasets whose manifest has no ``policy_report``."""
    index_schema, rejects_schema = ds.index_schema(), ds.rejects_schema()
    kept_hours = duration_expr(index_schema).sum() / 3600
    rows = []
    for rule in rules:
        row: dict[str, Any] = {"rule": rule.name, "metric": rule.metric, "min": rule.min, "max": rule.max}
        kept = [kept_hours.alias("kept_hours")]
        if rule.metric in index_schema.names():
            kept.append(_fails(rule, index_schema).sum().alias("kept_failing"))
        row |= ds.index().select(kept).collect().row(0, named=True)
        if rule.metric in rejects_schema.names():
            failed = _fails(rule, rejects_schema)
        elif schema.REJECT_DETAIL in rejects_schema.names():
            failed = pl.col(schema.REJECT_DETAIL).str.contains(f"{rule.metric}=", literal=True).fill_null(False)
        else:
            failed = pl.lit(False)
        row |= ds.rejects().filter(failed).select(
            pl.len().alias("rejected"), (duration_expr(rejects_schema).sum() / 3600).alias("rejected_hours"),
        ).collect().row(0, named=True)
        rows.append(row)
    return pl.DataFrame(rows)


def _fails(rule: Rule, table_schema: pl.Schema) -> pl.Expr:
    value = _finite(rule.metric, table_schema)
    failed = pl.lit(False)
    if rule.min is not None:
        failed = failed | (value < rule.min)
    if rule.max is not None:
        failed = failed | (value > rule.max)
    return failed.fill_null(False)


def rejects_by_reason(ds: Dataset) -> pl.DataFrame:
    """Rejected rows by stage and reason: rows, distinct sources, segment rows, hours."""
    rejects_schema = ds.rejects_schema()
    has_key = schema.KEY in rejects_schema.names()
    return ds.rejects().group_by(schema.REJECT_STAGE, schema.REJECT_REASON).agg(
        pl.len().alias("rows"),
        pl.col(schema.SOURCE_ID).n_unique().alias("sources"),
        (pl.col(schema.KEY).is_not_null().sum() if has_key else pl.lit(0)).alias("segments"),
        (duration_expr(rejects_schema).sum() / 3600).alias("hours"),
    ).sort(["rows", schema.REJECT_REASON], descending=[True, False]).collect()


def reject_examples(ds: Dataset, stage: str | None = None, reason: str | None = None,
                    limit: int = 50) -> pl.DataFrame:
    """Up to ``limit`` rejected rows of one stage/reason (``None``: any), URIs and details redacted."""
    frame = ds.rejects()
    if stage:
        frame = frame.filter(pl.col(schema.REJECT_STAGE) == stage)
    if reason:
        frame = frame.filter(pl.col(schema.REJECT_REASON) == reason)
    wanted = [schema.SOURCE_URI, schema.KEY, schema.REJECT_STAGE, schema.REJECT_REASON, schema.REJECT_DETAIL,
              schema.ORIG_DURATION_S, schema.ORIG_CODEC, schema.ORIG_SAMPLE_RATE, schema.SOURCE_BYTES]
    names = ds.rejects_schema().names()
    columns = [c for c in wanted if c in names] + [c for c in names if c.startswith("duplicate_of")]
    page = frame.select(columns).head(limit).collect()
    return _redacted(page, [schema.SOURCE_URI, schema.REJECT_DETAIL])


def dedup_summary(ds: Dataset) -> pl.DataFrame | None:
    """Counts by kept flag and reason from ``dedup.parquet`` (None when there is none)."""
    frame = ds.dedup()
    if frame is None:
        return None
    names = frame.collect_schema().names()
    keys = [c for c in ("kept", "reason") if c in names]
    clusters = [c for c in names if "cluster" in c][:1]
    if not keys:
        return frame.select(pl.len().alias("rows")).collect()
    aggs = [pl.len().alias("segments")] + [pl.col(c).n_unique().alias("clusters") for c in clusters]
    return frame.group_by(keys).agg(aggs).sort(keys).collect()


def shard_table(ds: Dataset) -> pl.DataFrame:
    """Per shard: samples, hours, bytes and sha256 (manifest), mean of every metric, and an
    ``outliers`` column naming the means more than ``OUTLIER_Z`` robust z-scores from the median
    (left empty below ``MIN_SHARDS_FOR_OUTLIERS`` shards)."""
    index_schema = ds.index_schema()
    metrics = [m for m in metric_columns(index_schema) if m != schema.AUDIO_DURATION_S]
    table = ds.index().group_by(schema.SHARD).agg(
        [pl.len().alias("samples"), (duration_expr(index_schema).sum() / 3600).alias("hours")]
        + [_finite(m, index_schema).mean().alias(f"mean_{m}") for m in metrics]
    ).sort(schema.SHARD).collect()
    listed = [s for s in ds.manifest.get("shards") or [] if isinstance(s, dict) and "name" in s]
    info = pl.DataFrame({schema.SHARD: [s["name"] for s in listed], "bytes": [s.get("bytes") for s in listed],
                         "sha256": [s.get("sha256") for s in listed]},
                        schema={schema.SHARD: pl.String, "bytes": pl.Int64, "sha256": pl.String})
    table = table.join(info, on=schema.SHARD, how="left")
    flags = [_outlier(pl.col(f"mean_{m}")).alias(f"outlier_mean_{m}") for m in metrics]
    table = table.with_columns(flags) if flags else table.with_columns(pl.lit(False).alias("_none"))
    flag_names = [f"outlier_mean_{m}" for m in metrics]
    outliers = pl.concat_list([pl.when(pl.col(f)).then(pl.lit(f[len("outlier_"):])) for f in flag_names]
                              ).list.drop_nulls().list.join(", ") if flag_names else pl.lit("")
    if table.height < MIN_SHARDS_FOR_OUTLIERS:
        outliers = pl.lit("")
    columns = [schema.SHARD, "samples", "hours", "bytes"] + [f"mean_{m}" for m in metrics]
    return table.with_columns(outliers.alias("outliers")).select(columns + ["outliers", "sha256"])


def _outlier(column: pl.Expr) -> pl.Expr:
    median = column.median()
    mad = (column - median).abs().median() * _MAD_TO_SIGMA
    return ((mad > 0) & ((column - median).abs() / mad > OUTLIER_Z)).fill_null(False)


@dataclass(frozen=True)
class SegmentFilter:
    """What the Listen page asks for. ``ranges``: (metric, low, high) with None for open ends;
    ``values``: (column, allowed values) for language/speaker/reason columns."""

    rejected: bool = False
    ranges: tuple[tuple[str, float | None, float | None], ...] = ()
    values: tuple[tuple[str, tuple[str, ...]], ...] = ()
    sort_by: str | None = None
    descending: bool = False


def filter_segments(ds: Dataset, spec: SegmentFilter, limit: int = 200) -> tuple[int, pl.DataFrame]:
    """How many rows match ``spec``, and the first ``limit`` of them (segment rows only when
    browsing rejects: rows with a key)."""
    frame, table_schema = (ds.rejects(), ds.rejects_schema()) if spec.rejected else (ds.index(), ds.index_schema())
    names = table_schema.names()
    if spec.rejected and schema.KEY in names:
        frame = frame.filter(pl.col(schema.KEY).is_not_null())
    for metric, low, high in spec.ranges:
        if metric not in names:
            continue
        if low is not None:
            frame = frame.filter(_finite(metric, table_schema) >= low)
        if high is not None:
            frame = frame.filter(_finite(metric, table_schema) <= high)
    for column, allowed in spec.values:
        if column in names and allowed:
            frame = frame.filter(pl.col(column).is_in(list(allowed)))
    total = frame.select(pl.len()).collect().item()
    if spec.sort_by and spec.sort_by in names:
        ties = [schema.KEY] if schema.KEY in names and spec.sort_by != schema.KEY else []
        frame = frame.sort([spec.sort_by, *ties], descending=[spec.descending] + [False] * len(ties), nulls_last=True)
    return total, frame.head(limit).collect()


def top_values(ds: Dataset, column: str, rejected: bool = False, limit: int = 200) -> list[str]:
    """The most frequent values of a string column (for the Listen page's pickers)."""
    frame, table_schema = (ds.rejects(), ds.rejects_schema()) if rejected else (ds.index(), ds.index_schema())
    if column not in table_schema.names():
        return []
    counts = frame.group_by(column).len().drop_nulls(column).sort(["len", column], descending=[True, False])
    return counts.head(limit).collect().get_column(column).to_list()


def metric_ranges(ds: Dataset, rejected: bool = False) -> dict[str, tuple[float, float]]:
    """(min, max) of every metric column that has a finite value."""
    frame, table_schema = (ds.rejects(), ds.rejects_schema()) if rejected else (ds.index(), ds.index_schema())
    return {m: r for m, r in _ranges({"t": (frame, table_schema)}, metric_columns(table_schema)).items()}


def label_rounds(ds: Dataset) -> pl.DataFrame:
    """Per ``labels/round-NNN``: label rows, distinct keys, share of kept segments labeled, the
    mean of every numeric column (agreement scores) and true-rate of every boolean (accepted)."""
    rounds = label_round_files(ds)
    if not rounds:
        return pl.DataFrame()
    kept = ds.index().select(pl.len()).collect().item()
    rows = []
    for name, uris in rounds.items():
        frame = pl.concat([_scan(u) for u in uris], how="diagonal_relaxed")
        table_schema = frame.collect_schema()
        numeric = [c for c, t in table_schema.items() if t.is_numeric() or t == pl.Boolean]
        aggs = [pl.len().alias("labels")]
        if schema.KEY in table_schema.names():
            aggs.append(pl.col(schema.KEY).n_unique().alias("keys"))
        aggs += [pl.col(c).cast(pl.Float64).mean().alias(f"{'rate' if table_schema[c] == pl.Boolean else 'mean'}_{c}")
                 for c in numeric]
        row = {"round": name} | frame.select(aggs).collect().row(0, named=True)
        if "keys" in row:
            row["labeled_share"] = row["keys"] / kept if kept else None
        rows.append(row)
    return pl.DataFrame(rows, infer_schema_length=None)


EVAL_COLUMNS = {  # eval.json section -> fields shown per token set (``tokenizer eval`` names)
    "rate": ("bitrate_bps", "compression_vs_mp3_128k"),
    "usage": ("code_use", "perplexity", "lzma_bps"),
    "units": ("pnmi", "mfcc_pnmi", "real_pnmi", "real_mfcc_pnmi"),
    "speed": ("encode_x_realtime", "decode_x_realtime"),
}


def token_sets(ds: Dataset) -> pl.DataFrame:
    """Per ``tokens/MODEL``: parts, rows, tokenized and skipped segments, their share of the kept
    segments, token count and hours, skip reasons, and the saved ``tokenizer eval`` numbers."""
    sets = token_set_files(ds)
    if not sets:
        return pl.DataFrame()
    kept = ds.index().select(pl.len()).collect().item()
    rows = []
    for model, uris in sets.items():
        frame = pl.concat([_scan(u).select(schema.TOK_NUM_TOKENS, schema.TOK_FPS, schema.TOK_SKIP_REASON)
                           for u in uris])
        by_reason = frame.group_by(schema.TOK_SKIP_REASON).agg(  # one scan: null reason = tokenized
            pl.len().alias("segments"), pl.col(schema.TOK_NUM_TOKENS).sum().alias("tokens"),
            (pl.col(schema.TOK_NUM_TOKENS) / pl.col(schema.TOK_FPS)).sum().alias("seconds")).collect()
        skips = sorted((r, n) for r, n in by_reason.select(schema.TOK_SKIP_REASON, "segments").iter_rows()
                       if r is not None)
        row = {"model": model, "parts": len(uris), "segments": int(by_reason["segments"].sum())}
        row["skipped"] = sum(n for _, n in skips)
        row["tokenized"] = row["segments"] - row["skipped"]
        row["tokens"] = int(by_reason["tokens"].sum())
        row["kept_share"] = row["tokenized"] / kept if kept else None
        row["token_hours"] = float(by_reason["seconds"].sum()) / 3600
        row["skip_reasons"] = ", ".join(f"{r} {n}" for r, n in skips) or None
        report = token_eval(ds, model)
        for section, names in EVAL_COLUMNS.items():
            row |= {name: (report.get(section) or {}).get(name) for name in names}
        generated = (report.get("resynthesis") or {}).get("generated") or {}
        row["wer_original"], row["wer_resynth"] = generated.get("wer_original"), generated.get("wer_resynth")
        row["wer_ratio"] = row["wer_resynth"] / row["wer_original"] if row["wer_original"] else None
        rows.append(row)
    return pl.DataFrame(rows, infer_schema_length=None)


def token_eval(ds: Dataset, model: str) -> dict[str, Any]:
    """The ``tokenizer eval`` report saved for ``model`` on this dataset, or {} when none was."""
    uri = layout.token_eval_uri(ds.root, model)
    return json.loads(storage.read_text(uri)) if storage.exists(uri) else {}


def _scan(uri: str) -> pl.LazyFrame:
    path = storage.local_path(uri)
    return pl.scan_parquet(path) if path else pl.read_parquet(io.BytesIO(storage.read_bytes(uri))).lazy()


def _redacted(frame: pl.DataFrame, columns: list[str]) -> pl.DataFrame:
    present = [c for c in columns if c in frame.columns]
    return frame.with_columns([pl.col(c).map_elements(storage.redact, return_dtype=pl.String) for c in present])


def licensing(ds: Dataset) -> dict[str, Any]:
    """Hours by license and by source domain, sources rejected by license, and the takedowns done
    (``audiomill inspect`` reports the same numbers through the same ``licensing_report``)."""
    from audiomill.jobs.provenance import licensing_report

    report = licensing_report(ds.root).as_dict()

    def frame(buckets: dict[str, dict[str, Any]], name: str) -> pl.DataFrame:
        return pl.DataFrame([{name: k, **v} for k, v in buckets.items()],
                            schema={name: pl.String, "hours": pl.Float64, "segments": pl.Int64, "sources": pl.Int64})

    takedowns = [{"id": t.get("id"), "criteria": ", ".join(f"{k}={v}" for k, v in (t.get("criteria") or {}).items()),
                  "requested_by": t.get("requested_by"), "segments": (t.get("counts") or {}).get("segments"),
                  "sources": (t.get("counts") or {}).get("sources"), "note": t.get("note")}
                 for t in ds.manifest.get("takedowns") or []]
    return {"by_license": frame(report["by_license"], "license"), "by_domain": frame(report["by_domain"], "domain"),
            "rejected_by_license": report["rejected_by_license"],
            "missing_license_segments": report["missing_license_segments"], "takedowns": takedowns}


def round_clips(ds: Dataset, round_name: str, limit: int = 500) -> pl.DataFrame:
    """Verified clips of one round: key, decision, reasons, the label's fields and the kept
    segment's shard location (so the page can play the original next to the re-synthesis)."""
    files = {u.rsplit("/", 1)[-1]: u for u in label_round_files(ds).get(round_name, [])}
    if "verify.parquet" not in files:
        return pl.DataFrame()
    verify = _scan(files["verify.parquet"]).select(
        schema.KEY, schema.VER_DECISION, schema.VER_REASONS)
    if "annotations.parquet" in files:
        annotations = _scan(files["annotations.parquet"])
        fields = [c for c in schema.ANNOTATION_FIELDS if c in annotations.collect_schema().names()]
        verify = verify.join(annotations.select(schema.KEY, *fields), on=schema.KEY, how="left")
    location = ds.index().select(schema.KEY, schema.SHARD, schema.TAR_OFFSET, schema.FLAC_BYTES)
    return verify.join(location, on=schema.KEY, how="left").sort(schema.KEY).head(limit).collect()


def resynthesis(ds: Dataset, round_name: str, key: str) -> bytes | None:
    """The re-synthesis FLAC of ``key`` in ``round_name`` (None when it has none)."""
    from audiomill.rounds.worker import RESYNTH_FLAC

    uri = next((u for u in label_round_files(ds).get(round_name, []) if u.endswith("/resynth.parquet")), None)
    if uri is None:
        return None
    rows = _scan(uri).filter(pl.col(schema.KEY) == key).select(RESYNTH_FLAC).collect()
    return rows[RESYNTH_FLAC][0] if rows.height else None
