"""Dashboard pages: Overview, Quality, Rejects, Shards, Tokens, Rounds, Licensing, Compare (Listen is in
``listen``).

Pages only lay out what ``queries`` computes; every query goes through ``query``, which caches the
result per (dataset root, manifest hash, arguments), so reopening a page or changing an unrelated
widget does not rescan parquet.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

import altair as alt
import polars as pl
import streamlit as st

from audiomill import layout, schema
from audiomill.dashboards import data, queries
from audiomill.dashboards.data import Dataset, Rule

DATASET_TTL_S = 60  # how often the manifest is re-read, to notice a rewritten dataset
KEPT_COLOR, REJECTED_COLOR, RULE_COLOR = "#4c78a8", "#e45756", "#222222"
MAX_STYLED_ROWS = 5000


@dataclass
class Context:
    """What every page gets: the dataset and any datasets passed with ``--compare``."""

    ds: Dataset
    others: list[Dataset] = field(default_factory=list)


@st.cache_resource(ttl=DATASET_TTL_S, show_spinner=False)
def open_cached(root: str) -> Dataset:
    return data.open_dataset(root)


@st.cache_data(show_spinner="Scanning parquet...", max_entries=512)
def _cached_query(name: str, root: str, token: str, args: tuple) -> Any:
    ds = open_cached(root)
    if ds.token != token:  # rewritten since the caller opened it: answer for the dataset asked about
        ds = data.open_dataset(root)
    return getattr(queries, name)(ds, *args)


def query(ds: Dataset, name: str, *args: Any) -> Any:
    """``queries.<name>(ds, *args)``, cached on the dataset's manifest hash."""
    return _cached_query(name, ds.root, ds.token, args)


def mark_run_done() -> None:
    """An invisible marker whose counter grows each finished run (browser tests wait on it)."""
    runs = st.session_state.get("_am_runs", 0) + 1
    st.session_state["_am_runs"] = runs
    st.html(f'<span class="am-run-done" data-run="{runs}"></span>')


def table_height(rows: int, max_px: int = 600) -> int:
    """Pixels for a dataframe to show ``rows`` rows without scrolling (up to ``max_px``)."""
    return min(max_px, 38 + 35 * max(rows, 1))


def fmt_hours(hours: float | None) -> str:
    if hours is None:
        return "n/a"
    return f"{hours:,.1f}" if hours >= 1000 else f"{hours:,.3f}"


def fmt_count(count: int | None) -> str:
    return "n/a" if count is None else f"{count:,}"


def fmt_ratio(ratio: float | None) -> str:
    return "n/a" if ratio is None else f"{ratio:.1%}"


# -- Overview --------------------------------------------------------------------------------------

def overview_page(ctx: Context) -> None:
    ds = ctx.ds
    st.title("Overview")
    numbers = query(ds, "overview")
    show_headline(numbers)
    if numbers["manifest_segments"] is not None and numbers["manifest_segments"] != numbers["segments"]:
        st.warning(f"manifest counts {numbers['manifest_segments']:,} segments, index holds {numbers['segments']:,}")
    if numbers["accounting_ok"] is False:
        st.error("accounting broken: inputs != kept + rejected sources (see manifest.json)")
    left, right = st.columns(2)
    with left:
        st.subheader("Per-stage throughput")
        stages = query(ds, "stage_throughput")
        st.dataframe(stages, hide_index=True, column_config={
            "worker_s": st.column_config.NumberColumn("worker s", format="%.3f"),
            "x_realtime": st.column_config.NumberColumn("x realtime (per worker)", format="%.1f")})
        per_stage = stages.filter(pl.col("stage") != "job").drop_nulls("x_realtime")
        if per_stage.height:
            st.altair_chart(alt.Chart(per_stage).mark_bar().encode(
                x=alt.X("x_realtime:Q", title="x realtime per worker"),
                y=alt.Y("stage:N", sort=None, axis=alt.Axis(labelOverlap=False)),
                tooltip=["stage", "worker_s", "x_realtime"]).properties(height=50 + 32 * per_stage.height))
        dedup = query(ds, "dedup_summary")
        if dedup is not None:
            st.subheader("Deduplication (dedup.parquet)")
            st.dataframe(dedup, hide_index=True)
    with right:
        st.subheader("Job")
        manifest = ds.manifest
        created = manifest.get("created_unix")
        st.markdown(f"format `{manifest.get('format', '?')}` · audiomill {manifest.get('audiomill_version', '?')}"
                    + (f" · created {dt.datetime.fromtimestamp(created, dt.timezone.utc):%Y-%m-%d %H:%M} UTC"
                       if isinstance(created, (int, float)) else "")
                    + (f" · wall {manifest['wall_s']:.1f} s" if isinstance(manifest.get("wall_s"), (int, float)) else ""))
        with st.expander("Job config", expanded=True):
            st.json(data.redact_tree(manifest.get("config", {})), expanded=1)
        with st.expander("Versions"):
            st.json(manifest.get("versions", {}))


def show_headline(numbers: dict[str, Any]) -> None:
    cols = st.columns(4)
    cols[0].metric("hours in", fmt_hours(numbers["hours_in"]))
    cols[1].metric("hours out", fmt_hours(numbers["hours_out"]))
    cols[2].metric("kept (hours)", fmt_ratio(numbers["kept_hours_ratio"]))
    cols[3].metric("kept (sources)", fmt_ratio(numbers["kept_sources_ratio"]))
    cols = st.columns(5)
    cols[0].metric("inputs", fmt_count(numbers["inputs"]))
    cols[1].metric("kept sources", fmt_count(numbers["kept_sources"]))
    cols[2].metric("rejected sources", fmt_count(numbers["rejected_sources"]))
    cols[3].metric("segments", fmt_count(numbers["segments"]))
    cols[4].metric("shards", fmt_count(numbers["shards"]))


# -- Quality ---------------------------------------------------------------------------------------

def quality_page(ctx: Context) -> None:
    ds = ctx.ds
    st.title("Quality")
    metrics = data.metric_columns(ds.index_schema())
    if not metrics:
        st.info("The index has no numeric metric columns yet.")
        return
    rules = ds.policy()
    st.subheader("Metric summary")
    summary = query(ds, "metric_summary")
    st.dataframe(summary, hide_index=True, height=table_height(summary.height))
    if rules:
        show_policy(ds, rules)
    else:
        st.info("No filter policy recorded in manifest.json: histograms show no thresholds.")
    measure = st.radio("bar height", ["count", "hours"], horizontal=True, key="quality_measure")
    frames = query(ds, "histograms", metrics)
    columns = st.columns(2)
    constant = [m for m in metrics if m in frames and frames[m]["bin_start"].equals(frames[m]["bin_end"])]
    if constant:
        st.caption("Same value in every row: " + ", ".join(
            f"`{m}` = {frames[m]['bin_start'][0]:g} ({int(frames[m]['count'].sum()):,} rows)" for m in constant))
    for number, metric in enumerate(m for m in metrics if m in frames and m not in constant):
        with columns[number % 2]:
            st.altair_chart(histogram_chart(frames[metric], metric, [r for r in rules if r.metric == metric],
                                            measure))


def show_policy(ds: Dataset, rules: list[Rule]) -> None:
    """The rules, then kept/rejected hours per rule: the job's own report when the manifest has
    one, else attributed from the tables."""
    policy = ds.manifest.get("policy") if isinstance(ds.manifest.get("policy"), dict) else {}
    st.subheader(f"Policy {policy.get('name', '')}".strip())
    st.markdown("\n".join(f"- `{r.name}`: {r.describe()}" if r.name != r.metric else f"- {r.describe()}"
                           for r in rules))
    report = data.recorded_policy_report(ds.manifest)
    if report is None:
        st.caption("Kept hours, kept rows that would fail each rule now, and rejected rows/hours per rule.")
        st.dataframe(query(ds, "rule_hours", tuple(rules)), hide_index=True)
        return
    cols = st.columns(3)
    cols[0].metric("policy kept hours", fmt_hours(report.get("kept_hours")))
    cols[1].metric("policy rejected hours", fmt_hours(report.get("rejected_hours")))
    cols[2].metric("policy rejected segments", fmt_count(report.get("rejected_segments")))
    st.caption("Per rule: segments/hours failing it, and failing only it (recorded when the policy ran).")
    st.dataframe(pl.DataFrame([r for r in report["rules"] if isinstance(r, dict)], infer_schema_length=None),
                 hide_index=True)


def histogram_chart(frame: pl.DataFrame, metric: str, rules: list[Rule], measure: str) -> alt.LayerChart:
    """Stacked kept/rejected bars with each rule's min/max drawn as a dashed line."""
    bars = alt.Chart(frame).mark_bar(binSpacing=0, strokeWidth=1).encode(
        x=alt.X("bin_start:Q", bin="binned", title=metric), x2="bin_end:Q",
        y=alt.Y(f"{measure}:Q", stack=True, title=measure),
        color=alt.Color("status:N", scale=alt.Scale(domain=["kept", "rejected"],
                                                    range=[KEPT_COLOR, REJECTED_COLOR])),
        stroke=alt.Stroke("status:N", legend=None, scale=alt.Scale(domain=["kept", "rejected"],
                                                                   range=[KEPT_COLOR, REJECTED_COLOR])),
        tooltip=["bin_start", "bin_end", "status", "count", "hours"])
    lines = [{"threshold": f"{r.name} {side}", "value": value}
             for r in rules for side, value in (("min", r.min), ("max", r.max)) if value is not None]
    if not lines:
        return alt.layer(bars).properties(title=metric, height=220)
    rule_layer = alt.Chart(pl.DataFrame(lines)).mark_rule(color=RULE_COLOR, strokeDash=[6, 3], size=2).encode(
        x="value:Q", tooltip=["threshold", "value"])
    return alt.layer(bars, rule_layer).properties(title=metric, height=220)


# -- Rejects ---------------------------------------------------------------------------------------

def rejects_page(ctx: Context) -> None:
    ds = ctx.ds
    st.title("Rejects")
    table = query(ds, "rejects_by_reason")
    if table.height == 0:
        st.success("Nothing was rejected.")
        return
    cols = st.columns(3)
    cols[0].metric("rejected rows", fmt_count(int(table["rows"].sum())))
    cols[1].metric("rejected sources", fmt_count(ds.manifest.get("counts", {}).get("rejected_sources")))
    cols[2].metric("rejected hours", fmt_hours(float(table["hours"].sum() or 0)))
    left, right = st.columns([3, 2])
    with left:
        st.dataframe(table, hide_index=True, column_config={"hours": st.column_config.NumberColumn(format="%.4f")})
    with right:
        measure = st.radio("bars", ["rows", "hours"], horizontal=True, key="rejects_measure")
        st.altair_chart(alt.Chart(table).mark_bar().encode(
            x=alt.X(f"{measure}:Q"), y=alt.Y(f"{schema.REJECT_REASON}:N", sort="-x"),
            color=alt.Color(f"{schema.REJECT_STAGE}:N"), tooltip=table.columns))
    st.subheader("Examples")
    stages = ["(any)"] + sorted(table[schema.REJECT_STAGE].drop_nulls().unique().to_list())
    stage = st.selectbox("stage", stages, key="rejects_stage")
    reasons = table if stage == "(any)" else table.filter(pl.col(schema.REJECT_STAGE) == stage)
    reason = st.selectbox("reason", ["(any)"] + reasons[schema.REJECT_REASON].drop_nulls().to_list(),
                          key="rejects_reason")
    examples = query(ds, "reject_examples", None if stage == "(any)" else stage,
                     None if reason == "(any)" else reason, 100)
    st.dataframe(examples, hide_index=True)


# -- Shards ----------------------------------------------------------------------------------------

def shards_page(ctx: Context) -> None:
    ds = ctx.ds
    st.title("Shards")
    table = query(ds, "shard_table")
    outliers = table.filter(pl.col("outliers") != "")
    cols = st.columns(3)
    cols[0].metric("shards", fmt_count(table.height))
    cols[1].metric("samples", fmt_count(int(table["samples"].sum())))
    cols[2].metric("outlier shards", fmt_count(outliers.height))
    st.caption(f"A mean is an outlier when it is more than {queries.OUTLIER_Z} robust z-scores "
               "(median / MAD) from the median over shards; outlier cells are highlighted.")
    if outliers.height and st.checkbox("only outlier shards", key="shards_only_outliers"):
        table = outliers
    st.dataframe(_styled_outliers(table) if table.height <= MAX_STYLED_ROWS else table, hide_index=True,
                 column_config={"hours": st.column_config.NumberColumn(format="%.4f"),
                                "bytes": st.column_config.NumberColumn(format="%d")})
    held = [s for s in ds.manifest.get("held_shards") or [] if isinstance(s, dict)]
    if held:
        st.subheader("Held shards")
        st.caption("Audio of rejected segments (policy, duplicates), kept so curation can bring them back.")
        st.dataframe(pl.DataFrame(held, infer_schema_length=None), hide_index=True)


def _styled_outliers(table: pl.DataFrame) -> Any:
    frame = table.to_pandas()

    def highlight(row: Any) -> list[str]:
        flagged = {name.strip() for name in str(row["outliers"]).split(",") if name.strip()}
        return ["background-color: #ffd6d6" if col in flagged or (col == "outliers" and flagged) else ""
                for col in row.index]

    return frame.style.apply(highlight, axis=1).format(precision=4)


# -- Tokens ----------------------------------------------------------------------------------------

def tokens_page(ctx: Context) -> None:
    """Token sidecars (``tokens/MODEL``): coverage, skips and the saved ``tokenizer eval`` report."""
    ds = ctx.ds
    st.title("Tokens")
    sets = query(ds, "token_sets")
    if sets.is_empty():
        st.info(f"No `{layout.TOKENS_DIR}/MODEL/` token tables in this dataset yet. Run `audiomill tokenize "
                "DATASET --tokenizer NAME@production`, then `audiomill tokenizer eval NAME@production DATASET` "
                "to see bit rate, unit quality and re-synthesis WER here.")
        return
    cols = st.columns(4)
    cols[0].metric("token sets", fmt_count(sets.height))
    cols[1].metric("tokenized segments", fmt_count(int(sets["tokenized"].sum())))
    cols[2].metric("skipped segments", fmt_count(int(sets["skipped"].sum())))
    cols[3].metric("token hours", fmt_hours(float(sets["token_hours"].sum())))
    st.dataframe(sets, hide_index=True)
    model = st.selectbox("token set", sets["model"].to_list(), key="tokens_model")
    report = query(ds, "token_eval", model)
    if not report:
        st.caption(f"No evaluation saved for {model}: `audiomill tokenizer eval {model} DATASET` saves one.")
        return
    st.subheader(f"Evaluation of {model}")
    left, right = st.columns(2)
    with left:
        st.dataframe(pl.DataFrame([{"section": section, "metric": name, "value": float(value)}
                                   for section in ("rate", "usage", "units", "speed")
                                   for name, value in (report.get(section) or {}).items()
                                   if isinstance(value, (int, float))]), hide_index=True)
    with right:
        resynthesis = report.get("resynthesis") or {}
        if resynthesis:
            st.dataframe(pl.DataFrame([{"set": label} | values for label, values in resynthesis.items()]),
                         hide_index=True)
        clips = report.get("clips") or []
        if clips:
            st.dataframe(pl.DataFrame(clips).select("set", "name", "wer_original", "wer_vocoder", "wer_resynth",
                                                    "resynth_text"), hide_index=True,
                         height=table_height(min(len(clips), 12)))


# -- Rounds ----------------------------------------------------------------------------------------

def rounds_page(ctx: Context) -> None:
    ds = ctx.ds
    st.title("Rounds")
    table = query(ds, "label_rounds")
    if table.is_empty():
        st.info(f"No `{data.LABELS_DIR}/round-*/` labels in this dataset yet. Label agreement and acceptance "
                "per self-labeling round appear here once a round writes its labels.")
        return
    st.dataframe(table, hide_index=True)
    scores = [c for c in table.columns if c.startswith(("mean_", "rate_")) and ("agree" in c or "accept" in c)]
    if scores:
        long = table.unpivot(index="round", on=scores, variable_name="score", value_name="value")
        st.altair_chart(alt.Chart(long).mark_line(point=True).encode(
            x="round:N", y="value:Q", color="score:N", tooltip=["round", "score", "value"]))
    _round_listen(ds, table["round"].to_list())


def _round_listen(ds: Dataset, rounds: list[str]) -> None:
    """Original and re-synthesis of one verified clip side by side, with its label and decision."""
    from audiomill.data import ranged_read

    st.subheader("Original and re-synthesis")
    verified = [r for r in rounds if not query(ds, "round_clips", r).is_empty()]
    if not verified:
        st.caption("No round has verified clips yet.")
        return
    round_name = st.selectbox("round", verified, index=len(verified) - 1, key="rounds_round")
    clips = query(ds, "round_clips", round_name)
    st.dataframe(clips.select(schema.KEY, schema.VER_DECISION, schema.VER_REASONS), hide_index=True,
                 height=table_height(min(clips.height, 8)))
    keys = clips[schema.KEY].to_list()
    row = clips.row(keys.index(st.selectbox("clip", keys, key="rounds_clip")), named=True)
    left, right = st.columns(2)
    with left:
        st.markdown("**Original**")
        if row.get(schema.SHARD) is None:
            st.info("Not among the kept segments (taken down or curated away).")
        else:
            segment = ranged_read.read_segment(ds.root, row[schema.SHARD], row[schema.KEY],
                                                row[schema.TAR_OFFSET], row[schema.FLAC_BYTES])
            st.audio(segment.flac, format="audio/flac")
    with right:
        st.markdown("**Re-synthesis from the label**")
        flac = query(ds, "resynthesis", round_name, row[schema.KEY])
        st.audio(flac, format="audio/flac") if flac else st.info("No re-synthesis stored for this clip.")
    st.markdown(f"**{row[schema.VER_DECISION]}**" + (f": {row[schema.VER_REASONS]}" if row[schema.VER_REASONS] else ""))
    st.json({k: v for k, v in row.items() if k.startswith(schema.ANN_PREFIX) and v is not None})


# -- Licensing -------------------------------------------------------------------------------------

def licensing_page(ctx: Context) -> None:
    st.title("Licensing")
    report = query(ctx.ds, "licensing")
    by_license, by_domain = report["by_license"], report["by_domain"]
    columns = st.columns(4)
    columns[0].metric("licenses", fmt_count(by_license.filter(pl.col("license") != "unknown").height))
    columns[1].metric("domains", fmt_count(by_domain.filter(pl.col("domain") != "unknown").height))
    columns[2].metric("segments without license", fmt_count(report["missing_license_segments"]))
    columns[3].metric("takedowns", fmt_count(len(report["takedowns"])))
    for title, frame, name in (("Kept hours by license", by_license, "license"),
                               ("Kept hours by source domain", by_domain, "domain")):
        st.subheader(title)
        if frame.is_empty():
            st.info("No kept segments.")
            continue
        st.altair_chart(alt.Chart(frame).mark_bar(color=KEPT_COLOR).encode(
            x="hours:Q", y=alt.Y(f"{name}:N", sort="-x"), tooltip=[name, "hours", "segments", "sources"]))
        st.dataframe(frame, hide_index=True, height=table_height(frame.height))
    if report["rejected_by_license"]:
        st.subheader("Sources rejected by `ingest.licenses`")
        st.dataframe(pl.DataFrame([{"license": k, "sources": v} for k, v in report["rejected_by_license"].items()]),
                     hide_index=True)
    st.subheader("Takedowns")
    if report["takedowns"]:
        st.dataframe(pl.DataFrame(report["takedowns"]), hide_index=True)
    else:
        st.caption("None recorded (`audiomill takedown DATASET --source|--domain|--license`).")


# -- Compare ---------------------------------------------------------------------------------------

def compare_page(ctx: Context) -> None:
    st.title("Compare")
    if not ctx.others:
        st.info("Start the dashboard with another dataset to compare, e.g. "
                "`audiomill dashboard ./batch-02 --compare ./batch-01`.")
        return
    labels = {o.label: o for o in ctx.others}
    other = labels[st.selectbox("compare with (B)", list(labels), key="compare_with")]
    pair = {"A": ctx.ds, "B": other}
    columns = st.columns(2)
    for column, (name, ds) in zip(columns, pair.items()):
        with column:
            st.subheader(name)
            st.caption(f"`{ds.label}`")
            show_headline(query(ds, "overview"))
    st.subheader("Metrics (median, p5-p95)")
    metrics = _side_by_side({n: query(d, "metric_summary") for n, d in pair.items()})
    st.dataframe(metrics, hide_index=True, height=table_height(metrics.height))
    st.subheader("Rejects by reason (rows)")
    reasons = [query(d, "rejects_by_reason").group_by(schema.REJECT_REASON).agg(pl.col("rows").sum().alias(n))
               for n, d in pair.items()]
    st.dataframe(reasons[0].join(reasons[1], on=schema.REJECT_REASON, how="full", coalesce=True)
                 .fill_null(0).sort(schema.REJECT_REASON), hide_index=True)


def _side_by_side(summaries: dict[str, pl.DataFrame]) -> pl.DataFrame:
    merged: pl.DataFrame | None = None
    for name, summary in summaries.items():
        if summary.is_empty():
            continue
        part = summary.select("metric", pl.col("median").alias(f"{name} median"),
                              pl.format("{} - {}", pl.col("p5").round(4), pl.col("p95").round(4)).alias(f"{name} p5-p95"))
        merged = part if merged is None else merged.join(part, on="metric", how="full", coalesce=True)
    return merged if merged is not None else pl.DataFrame()
