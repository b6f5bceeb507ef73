"""What a user would write instead of audiomill, with the same libraries: the benchmark's baselines.

Both do, per file: PyAV decode + ``av.AudioResampler`` to 16 kHz mono, stock silero-vad (its
streaming ONNX model, ``load_silero_vad(onnx=True)``, one 32 ms frame per call) through
``get_speech_timestamps`` with audiomill's default VAD settings, drop pieces under 1 s, FLAC
through soundfile, and a ``.flac`` + ``.json`` pair per segment appended to one tar.

- ``naive``: one process, one thread, file after file.
- ``pool``: ``multiprocessing.Pool(2)``, one task per file (``imap``, chunksize 1, in listing order);
  workers load the model once and return the encoded members; the parent writes the tar.

Run as ``python benchmarks/baselines.py {naive|pool} CORPUS OUT_TAR [PROCESSES]``; prints JSON.
"""

from __future__ import annotations

import io
import json
import sys
import tarfile
import time
from pathlib import Path
from typing import Any

NAIVE_VAD = dict(threshold=0.5, min_speech_duration_ms=250, min_silence_duration_ms=300,
                 speech_pad_ms=100, max_speech_duration_s=30.0)  # audiomill's VadConfig defaults
MIN_SEGMENT_S = 1.0
SUFFIXES = (".flac", ".wav", ".ogg", ".mp3", ".opus", ".m4a")
_MODEL = None


def decode(path: Path):
    """PyAV decode + resample to 16 kHz mono float32 (FFmpeg's own downmix)."""
    import av
    import numpy as np

    resampler = av.AudioResampler(format="flt", layout="mono", rate=16000)
    chunks = []
    with av.open(str(path)) as container:
        for frame in container.decode(audio=0):
            frame.pts = None
            chunks += [out.to_ndarray().reshape(-1) for out in resampler.resample(frame)]
    chunks += [out.to_ndarray().reshape(-1) for out in resampler.resample(None)]
    return np.concatenate(chunks) if chunks else np.zeros(0, np.float32)


def _load_model() -> None:
    global _MODEL
    import torch
    from silero_vad import load_silero_vad

    torch.set_num_threads(1)
    _MODEL = load_silero_vad(onnx=True)


def clean_file(path: Path) -> dict[str, Any]:
    """Decode, VAD, cut and encode one file: its tar members and the seconds each step took."""
    import soundfile as sf
    import torch
    from silero_vad import get_speech_timestamps

    if _MODEL is None:
        _load_model()
    t0 = time.perf_counter()
    try:
        audio = decode(path)
    except Exception as err:  # noqa: BLE001 - a user's script skips what it cannot read
        return {"members": [], "audio_s": 0.0, "seconds": {}, "error": f"{type(err).__name__}"}
    t1 = time.perf_counter()
    spans = get_speech_timestamps(torch.from_numpy(audio), _MODEL, sampling_rate=16000, **NAIVE_VAD) \
        if audio.size else []
    t2 = time.perf_counter()
    members = []
    for span in spans:
        piece = audio[span["start"]:span["end"]]
        if piece.size < MIN_SEGMENT_S * 16000:
            continue
        buffer = io.BytesIO()
        sf.write(buffer, piece, 16000, format="FLAC", subtype="PCM_16")
        key = f"{path.stem}-{span['start']:010d}"
        meta = {"source": path.name, "start_s": span["start"] / 16000, "end_s": span["end"] / 16000}
        members += [(f"{key}.flac", buffer.getvalue()), (f"{key}.json", json.dumps(meta).encode())]
    t3 = time.perf_counter()
    return {"members": members, "audio_s": audio.size / 16000,
            "seconds": {"decode": t1 - t0, "vad": t2 - t1, "encode": t3 - t2}}


def _add(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    tar.addfile(info, io.BytesIO(data))


def run(mode: str, corpus: Path, out_tar: Path, processes: int = 2) -> dict[str, Any]:
    paths = sorted(p for p in corpus.iterdir() if p.suffix in SUFFIXES)
    totals = {"decode": 0.0, "vad": 0.0, "encode": 0.0}
    audio_s = out_s = 0.0
    segments = errors = 0
    if mode == "pool":
        import multiprocessing

        pool = multiprocessing.get_context("fork").Pool(processes, initializer=_load_model)
        results = pool.imap(clean_file, paths, chunksize=1)
    else:
        pool, results = None, map(clean_file, paths)
    with tarfile.open(out_tar, "w") as tar:
        for result in results:
            for name, data in result["members"]:
                _add(tar, name, data)
            segments += len(result["members"]) // 2
            out_s += sum(json.loads(d)["end_s"] - json.loads(d)["start_s"]
                         for n, d in result["members"] if n.endswith(".json"))
            audio_s += result["audio_s"]
            errors += "error" in result
            for step, seconds in result["seconds"].items():
                totals[step] += seconds
    if pool is not None:
        pool.close()
        pool.join()
    return {"mode": mode, "files": len(paths), "errors": errors, "segments": segments,
            "hours_in": audio_s / 3600, "hours_out": out_s / 3600, "stage_seconds": totals}


if __name__ == "__main__":
    mode, corpus_dir, tar_path = sys.argv[1], Path(sys.argv[2]), Path(sys.argv[3])
    print(json.dumps(run(mode, corpus_dir, tar_path, int(sys.argv[4]) if len(sys.argv) > 4 else 2)))
