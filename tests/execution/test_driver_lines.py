"""Only the known-benign Ray driver line is kept out of the user's terminal; other errors pass."""

from __future__ import annotations

import subprocess
import sys

SCRIPT = """
import os
from audiomill.execution.ray_session import drop_driver_lines
with drop_driver_lines():
    os.write(2, b"[E core_worker.cc:2465] Actor X has constructor arguments in the object store and max_restarts > 0.\\n")
    os.write(2, b"a real error\\n")
os.write(2, b"after\\n")
"""


def test_the_benign_line_is_dropped_and_everything_else_kept():
    done = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stderr.splitlines() == ["a real error", "after"]
