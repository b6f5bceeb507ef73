"""Hostile inputs: every one becomes a reject with a reason (or is kept when it is valid audio),
the job exits 0, accounting balances, nothing is written outside the output dir, no secret leaks."""

from __future__ import annotations

import io
import json
import os
import struct
import subprocess
import sys
import tarfile
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

from audiomill import layout, schema
from audiomill.testing.signals import espeak, resample, sine, write_audio

pytestmark = pytest.mark.slow


def _wav_with_huge_declared_length(path: Path) -> None:
    """A WAV header claiming ~4 GB of 8 kHz 8-bit data (about 6 days) followed by 1 s of bytes."""
    data = bytes([128]) * 8000
    header = b"RIFF" + struct.pack("<I", 0xFFFFFFF0) + b"WAVE"
    header += b"fmt " + struct.pack("<IHHIIHH", 16, 1, 1, 8000, 8000, 1, 8)
    header += b"data" + struct.pack("<I", 0xFFFFFFE0)
    path.write_bytes(header + data)


@pytest.fixture(scope="module")
def hostile_dir(tmp_path_factory) -> tuple[Path, dict[str, list[str]]]:
    """Build the hostile tree; returns (root, relative path -> acceptable outcomes)."""
    root = tmp_path_factory.mktemp("hostile") / "in"
    expect: dict[str, list[str]] = {}
    tone = sine(440.0, 3.0, 16_000, -20.0)
    for fmt in ("wav", "flac", "mp3", "ogg", "opus", "m4a"):
        whole = write_audio(root / f"whole.{fmt}", tone, 16_000)
        data = whole.read_bytes()
        whole.unlink()
        (root / "truncated").mkdir(exist_ok=True)
        (root / "truncated" / f"tone.{fmt}").write_bytes(data[: max(len(data) // 3, 40)])
        expect[f"truncated/tone.{fmt}"] = ["reject:decode_error", "reject:no_speech", "reject:empty",
                                           "reject:too_short"]
    (root / "zero.wav").write_bytes(b"")
    expect["zero.wav"] = ["reject:empty"]
    rng = np.random.default_rng(7)
    for name in ("random.wav", "random.mp3"):
        (root / name).write_bytes(b"\x00garbage" + rng.bytes(5000))
        expect[name] = ["reject:not_audio", "reject:decode_error"]
    _wav_with_huge_declared_length(root / "huge_header.wav")
    expect["huge_header.wav"] = ["reject:too_long", "reject:no_speech"]
    speech, rate = espeak("Hostile inputs must never crash the cleaning job.", voice="en")
    eight = np.repeat(resample(speech, rate, 48_000)[:, None], 8, axis=1)
    write_audio(root / "eight_channels.wav", eight, 48_000)
    expect["eight_channels.wav"] = ["kept"]
    hires, _ = espeak("Very high sample rates are resampled like any other.", voice="en+f3")
    write_audio(root / "hires_192k.wav", resample(hires, rate, 192_000), 192_000)
    expect["hires_192k.wav"] = ["kept"]
    subprocess.run(["sox", "-n", "-r", "8000", "-c", "1", str(root / "long_silence.flac"), "trim", "0", "5400"],
                   check=True)
    expect["long_silence.flac"] = ["reject:no_speech"]
    sentences = {"a": "The first folder holds this sentence.", "b": "A second folder holds another one.",
                 "tar": "Archive members are read by byte range.", "bad": "Strange names are refused."}
    clips = {k: resample(espeak(t, voice="en")[0], rate, 16_000) for k, t in sentences.items()}
    for sub in ("a", "b"):  # duplicate names in different dirs are different sources
        write_audio(root / sub / "same_name.wav", clips[sub], 16_000)
        expect[f"{sub}/same_name.wav"] = ["kept"]
    (root / "loop").mkdir()
    os.symlink(root, root / "loop" / "back_to_root")  # a directory symlink loop is never followed
    os.symlink(root / "missing.wav", root / "dangling.wav")  # a broken link is skipped
    bad_name = os.fsencode(str(root)) + b"/bad_\xff\xfe_name.wav"
    write_audio(root / "bad.wav", clips["bad"], 16_000)
    os.rename(root / "bad.wav", bad_name)
    expect[os.fsdecode(b"bad_\xff\xfe_name.wav").encode("utf-8", "surrogateescape").decode(
        "utf-8", "backslashreplace")] = ["reject:unsafe_path"]
    with tarfile.open(root / "evil.tar", "w") as tar:
        payload = write_audio(root.parent / "member.wav", clips["tar"], 16_000).read_bytes()
        for name in ("../escape.wav", "/abs/path.wav", "fine/inside.wav"):
            info = tarfile.TarInfo(name)
            info.size = len(payload)
            tar.addfile(info, io.BytesIO(payload))
        link = tarfile.TarInfo("link.wav")
        link.type = tarfile.SYMTYPE
        link.linkname = "/etc/passwd"
        tar.addfile(link)
    expect["evil.tar#../escape.wav"] = ["reject:unsafe_path"]
    expect["evil.tar#/abs/path.wav"] = ["reject:unsafe_path"]
    expect["evil.tar#link.wav"] = ["reject:unsafe_path"]
    expect["evil.tar#fine/inside.wav"] = ["kept"]
    return root, expect


def test_hostile_inputs_are_rejected_with_reasons(hostile_dir, tmp_path):
    root, expect = hostile_dir
    out = tmp_path / "out"
    before = set(os.listdir(tmp_path))
    result = subprocess.run(
        [sys.executable, "-m", "audiomill", "clean", str(root), "--out", str(out), "--runner", "local",
         "--json", "--set", "ingest.part_size=4"], capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    manifest = json.loads(result.stdout)
    assert manifest["accounting"]["ok"]
    outcomes: dict[str, str] = {}
    prefix = str(root) + "/"
    for row in pq.read_table(out / layout.INDEX_FILE).to_pylist():
        outcomes[row[schema.SOURCE_URI][len(prefix):]] = "kept"
    for row in pq.read_table(out / layout.REJECTS_FILE).to_pylist():
        outcomes[row[schema.SOURCE_URI][len(prefix):]] = f"reject:{row[schema.REJECT_REASON]}"
    assert sorted(outcomes) == sorted(expect), set(outcomes) ^ set(expect)
    wrong = {k: (outcomes[k], v) for k, v in expect.items() if outcomes[k] not in v}
    assert not wrong
    assert manifest["counts"]["inputs"] == len(expect)
    assert set(os.listdir(tmp_path)) == before | {"out"}  # nothing written beside the output
    assert not (root.parent / "escape.wav").exists() and not Path("/abs/path.wav").exists()
