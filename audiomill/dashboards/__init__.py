"""The quality dashboard: a Streamlit app over a dataset's index, rejects and manifest.

``data`` and ``queries`` are plain polars (testable without Streamlit), ``audiomill.data.ranged_read``
reads one segment's bytes from its shard by byte range, ``app``/``views`` are the Streamlit pages and
``launch`` starts Streamlit as a subprocess bound to 127.0.0.1.
"""
