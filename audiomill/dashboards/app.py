"""The Streamlit app: ``streamlit run app.py -- --dataset ROOT [--compare OTHER ...]``.

Started by ``audiomill dashboard`` (``launch.py``). Pages render only when opened (``st.navigation``)
and every aggregation goes through ``views.query``, cached per dataset manifest hash.
"""

from __future__ import annotations

import argparse
import sys

import streamlit as st

from audiomill import storage
from audiomill.dashboards import listen, views


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="audiomill-dashboard")
    parser.add_argument("--dataset", required=True, help="dataset root: a directory or s3:// prefix")
    parser.add_argument("--compare", action="append", default=[], help="another dataset (repeatable)")
    return parser.parse_args(argv)


def main(argv: list[str]) -> None:
    st.set_page_config(page_title="audiomill dashboard", layout="wide")
    args = parse_args(argv)
    try:
        ds = views.open_cached(args.dataset)
        others = [views.open_cached(root) for root in args.compare]
    except (FileNotFoundError, ValueError) as err:
        st.error(storage.redact(str(err)))
        st.stop()
    ctx = views.Context(ds, others)
    pages = [
        st.Page(lambda: views.overview_page(ctx), title="Overview", url_path="overview", default=True),
        st.Page(lambda: views.quality_page(ctx), title="Quality", url_path="quality"),
        st.Page(lambda: views.rejects_page(ctx), title="Rejects", url_path="rejects"),
        st.Page(lambda: views.shards_page(ctx), title="Shards", url_path="shards"),
        st.Page(lambda: listen.listen_page(ctx), title="Listen", url_path="listen"),
        st.Page(lambda: views.tokens_page(ctx), title="Tokens", url_path="tokens"),
        st.Page(lambda: views.rounds_page(ctx), title="Rounds", url_path="rounds"),
        st.Page(lambda: views.licensing_page(ctx), title="Licensing", url_path="licensing"),
        st.Page(lambda: views.compare_page(ctx), title="Compare", url_path="compare"),
    ]
    with st.sidebar:
        st.caption(f"dataset: `{ds.label}`")
    st.navigation(pages).run()
    views.mark_run_done()


if __name__ == "__main__":  # streamlit runs this file as __main__
    main(sys.argv[1:])
