"""The Listen page: filter segments by metric ranges, language, speaker or reject reason, then play
one straight from its shard (byte range from the index) with its JSON metadata and transcript."""

from __future__ import annotations

from typing import Any

import streamlit as st

from audiomill import schema, storage
from audiomill.dashboards import data
from audiomill.data import ranged_read
from audiomill.dashboards.queries import SegmentFilter
from audiomill.dashboards.views import Context, fmt_count, open_cached, query

PAGE_ROWS = 200
KEPT, REJECTED = "kept segments", "rejected segments"
_LOCATION = (schema.SHARD, schema.TAR_OFFSET, schema.FLAC_BYTES)


@st.cache_data(show_spinner=False, max_entries=64)
def _segment(root: str, token: str, shard: str, key: str, tar_offset: int, flac_bytes: int) -> tuple[bytes, dict]:
    segment = ranged_read.read_segment(open_cached(root).root, shard, key, tar_offset, flac_bytes)
    return segment.flac, segment.meta


def listen_page(ctx: Context) -> None:
    ds = ctx.ds
    st.title("Listen")
    rejected = st.radio("browse", [KEPT, REJECTED], horizontal=True, key="listen_browse") == REJECTED
    table_schema = ds.rejects_schema() if rejected else ds.index_schema()
    spec = _filters(ds, table_schema, rejected)
    total, rows = query(ds, "filter_segments", spec, PAGE_ROWS)
    st.metric("matching segments", fmt_count(total))
    if rows.is_empty():
        st.info("No segment matches these filters." if not rejected else
                "No rejected segments match (rejected whole sources have no segment audio).")
        return
    metrics = [m for m in data.metric_columns(table_schema) if m in rows.columns]
    shown = [c for c in dict.fromkeys((schema.KEY, schema.SHARD, schema.REJECT_REASON,
                                      *_choice_columns(table_schema, rejected))) if c in rows.columns]
    st.dataframe(rows.select(shown + [m for m in metrics if m not in shown]), hide_index=True, height=260)
    if total > rows.height:
        st.caption(f"showing the first {rows.height:,} of {total:,}")
    keys = rows[schema.KEY].to_list()
    key = st.selectbox("segment", keys, key="listen_segment")
    _play(ds, rows.row(keys.index(key), named=True), data.transcript_column(table_schema))


def _choice_columns(table_schema: Any, rejected: bool) -> list[str]:
    columns = data.text_columns(table_schema, data.LANGUAGE_HINT) + data.text_columns(table_schema, data.SPEAKER_HINT)
    return columns + ([schema.REJECT_REASON] if rejected and schema.REJECT_REASON in table_schema.names() else [])


def _filters(ds: data.Dataset, table_schema: Any, rejected: bool) -> SegmentFilter:
    """The filter widgets; only ranges narrower than the data's become filters (keeps nulls)."""
    ranges_by_metric = query(ds, "metric_ranges", rejected)
    metrics = list(ranges_by_metric)
    default = [m for m in (schema.AUDIO_DURATION_S,) if m in metrics]
    chosen = st.multiselect("filter by metric", metrics, default=default, key=f"listen_metrics_{rejected}")
    ranges = []
    for metric in chosen:
        low_bound, high_bound = ranges_by_metric[metric]
        left, right = st.columns(2)
        low = left.number_input(f"{metric} min", value=float(low_bound), format="%.4f", key=f"min_{rejected}_{metric}")
        high = right.number_input(f"{metric} max", value=float(high_bound), format="%.4f",
                                  key=f"max_{rejected}_{metric}")
        ranges.append((metric, low if low > low_bound else None, high if high < high_bound else None))
    values = []
    for column in _choice_columns(table_schema, rejected):
        options = query(ds, "top_values", column, rejected)
        picked = st.multiselect(column, options, key=f"listen_{rejected}_{column}")
        if picked:
            values.append((column, tuple(picked)))
    left, right = st.columns([3, 1])
    sort_by = left.selectbox("sort by", ["(index order)", *metrics], key=f"listen_sort_{rejected}")
    descending = right.checkbox("descending", key=f"listen_desc_{rejected}")
    return SegmentFilter(rejected=rejected, ranges=tuple((m, lo, hi) for m, lo, hi in ranges
                                              if lo is not None or hi is not None),
                         values=tuple(values), sort_by=None if sort_by == "(index order)" else sort_by,
                         descending=descending)


def _play(ds: data.Dataset, row: dict[str, Any], transcript_column: str | None) -> None:
    if any(row.get(c) is None for c in _LOCATION):
        st.info("This row has no stored audio (its shard location is not recorded).")
        st.json(data.redact_tree({k: v for k, v in row.items() if v is not None}))
        return
    try:
        flac, meta = _segment(ds.root, ds.token, row[schema.SHARD], row[schema.KEY],
                              row[schema.TAR_OFFSET], row[schema.FLAC_BYTES])
    except (ranged_read.ShardReadError, FileNotFoundError, OSError) as err:
        st.error(f"cannot read this segment: {storage.redact(str(err))}")
        return
    st.audio(flac, format="audio/flac")
    transcript = row.get(transcript_column) if transcript_column else None
    transcript = transcript or next((meta[k] for k in data.TRANSCRIPT_NAMES if isinstance(meta.get(k), str)), None)
    if transcript:
        st.markdown("**Transcript**")
        st.text(transcript)
    st.caption(f"{len(flac):,} bytes of FLAC from `{row[schema.SHARD]}` at byte {row[schema.TAR_OFFSET]:,}")
    st.json(data.redact_tree(meta), expanded=1)
