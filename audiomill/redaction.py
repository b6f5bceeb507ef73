"""Credentials and tokens never leave through a URI: redaction of URIs, errors and log text."""

from __future__ import annotations

import re

_USERINFO = re.compile(r"([A-Za-z][A-Za-z0-9+.-]*://)[^/@?#\s]*@")
_QUERY = re.compile(r"(://[^?#\s]*)[?#][^\s'\"]*")


def redact(uri: str) -> str:
    """``uri`` without ``user:pass@`` and query/fragment (where signatures and tokens live).

    Also works on free text such as an exception message: every ``scheme://`` URL in it is
    cleaned; plain local paths are left alone.
    """
    return _QUERY.sub(r"\1", _USERINFO.sub(r"\1", uri))


def redact_error(err: BaseException, *uris: str) -> str:
    """``Type: message`` of an error, safe to record: the secret parts of ``uris`` (userinfo,
    query, fragment) are masked wherever the message quotes them, then URLs are redacted."""
    return mask_secrets(f"{type(err).__name__}: {err}", *uris)


def mask_secrets(text: str, *uris: str) -> str:
    """``text`` with the secret parts of ``uris`` masked and every URL in it redacted."""
    for uri in uris:
        for secret in _secret_parts(uri):
            text = text.replace(secret, "***")
    return redact(text)


def _secret_parts(uri: str) -> list[str]:
    parts = []
    scheme_end = uri.find("://")
    if scheme_end >= 0:
        rest = uri[scheme_end + 3:]
        authority = re.split(r"[/?#]", rest, maxsplit=1)[0]
        if "@" in authority:
            parts.append(authority.rsplit("@", 1)[0])
    for mark in ("?", "#"):
        if mark in uri:
            parts.append(uri.split(mark, 1)[1])
    return [p for p in parts if len(p) >= 3]
