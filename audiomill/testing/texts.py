"""Many English sentences without a download: the Python standard library's own docstrings.

Benchmarks that train on generated speech need phonetic variety beyond the few dozen sentences
of ``speech_dataset``; the docstrings of stdlib modules hold hundreds of plain English sentences
(PSF licence, shipped with every Python). Deterministic for one Python version: modules and
names are walked in sorted order, and only letters, spaces, commas and apostrophes pass.
"""

from __future__ import annotations

import functools
import importlib
import re
import warnings

MODULES = ("abc", "argparse", "bisect", "calendar", "collections", "contextlib", "copy", "csv", "datetime",
           "decimal", "difflib", "doctest", "email.message", "enum", "fractions", "functools", "heapq",
           "http.client", "itertools", "json", "logging", "os", "pathlib", "pickle", "queue", "random", "re",
           "shutil", "socket", "statistics", "string", "subprocess", "tarfile", "tempfile", "textwrap",
           "threading", "unittest", "urllib.request", "zipfile")
_PLAIN = re.compile(r"[A-Za-z ,']+[.]")


@functools.cache
def docstring_sentences(min_words: int = 6, max_words: int = 16) -> tuple[str, ...]:
    """Unique plain sentences of ``min_words``..``max_words`` words, in a fixed order."""
    out: dict[str, None] = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for name in MODULES:
            module = importlib.import_module(name)
            for obj in [module] + [getattr(module, a) for a in sorted(dir(module)) if not a.startswith("_")]:
                doc = getattr(obj, "__doc__", None)
                if not isinstance(doc, str):
                    continue
                for sentence in re.split(r"(?<=[.!?])\s+", " ".join(doc.split())):
                    if min_words <= len(sentence.split()) <= max_words and _PLAIN.fullmatch(sentence):
                        out.setdefault(sentence)
    return tuple(out)
