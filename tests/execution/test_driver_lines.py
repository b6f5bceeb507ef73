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


CHILD_SCRIPT = """
import os, subprocess, sys, time
from audiomill.execution.ray_session import drop_driver_lines
start = time.monotonic()
with drop_driver_lines():
    child = subprocess.Popen([sys.executable, "-c",
                              "import os, time; time.sleep(4); os.write(2, b'child after 4 s\\\\n')"])
    os.write(2, b"parent inside\\n")
os.write(2, f"left after {time.monotonic() - start:.2f} s\\n".encode())
child.wait()
time.sleep(0.2)
"""


def test_leaving_does_not_wait_for_children_holding_stderr_and_their_lines_still_arrive():
    done = subprocess.run([sys.executable, "-c", CHILD_SCRIPT], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    lines = done.stderr.splitlines()
    assert lines[0] == "parent inside" and lines[-1] == "child after 4 s", lines
    assert float(lines[1].split()[2]) < 1.0, lines  # waited 2 s for the pipe's end before
