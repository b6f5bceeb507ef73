"""Peak memory of one long file through the decode and VAD stages: 10 min vs 2 h (by default).

Each measurement runs in a fresh subprocess that builds a one-source part, loads the VAD model,
records its RSS, then runs ``DecodeStage`` and ``VadStage`` on the part and reports its peak RSS
(``ru_maxrss``). The files are 16 kHz mono FLAC made by tiling the long benchmark corpus
(``bench_corpora.ensure_long``, 1 h) and are kept in ``--workdir``.

For reference, 16 kHz float32 audio is 230 MiB per hour: the flow holds a source's whole decoded
audio in one Arrow cell, so the floor for a 2 h file is ~460 MiB above the baseline.

Usage: python benchmarks/memory_long_file.py [--minutes 10 120] [--workdir DIR]
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

MIB = 2**20


def build(path: Path, minutes: float, corpus: Path) -> Path:
    """``minutes`` of the corpus's files, one after another (repeated as needed), as one FLAC."""
    import soundfile as sf

    if path.is_file() and abs(sf.info(path).duration - minutes * 60) < 1:
        return path
    sources = sorted(corpus.glob("*.flac"))
    left = int(minutes * 60 * 16000)
    with sf.SoundFile(path, "w", 16000, 1, format="FLAC", subtype="PCM_16") as out:
        while left > 0:
            for source in sources:
                block = sf.read(source, dtype="int16")[0][:left]
                out.write(block)
                left -= block.size
                if left <= 0:
                    break
    return path


def child(path: Path) -> dict:
    """Run decode + VAD on a one-source part of ``path`` in this process; report memory and time."""
    from audiomill.config import DecodeConfig, VadConfig
    from audiomill import ingest
    from audiomill.pipelines.decode import DecodeStage
    from audiomill.pipelines.vad import VadStage

    (part,) = ingest.iter_parts(ingest.iter_sources([str(path)], ingest.IngestConfig()), 1)
    decode, vad = DecodeStage(DecodeConfig()), VadStage(VadConfig())
    vad.setup()
    before = _rss_mib()
    started = time.perf_counter()
    decoded = decode(part)
    after_decode = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    out = vad(decoded)
    wall = time.perf_counter() - started
    seconds = out["audio_duration_s"][0].as_py()
    return {"file": path.name, "audio_s": seconds, "rss_before_mib": before,
            "peak_after_decode_mib": after_decode,
            "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
            "audio_mib": seconds * 16000 * 4 / MIB, "segments": len(out["vad_starts_s"][0].as_py()),
            "wall_s": wall}


def _rss_mib() -> float:
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * resource.getpagesize() / MIB


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, nargs="+", default=[10.0, 120.0])
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/audiomill-bench"))
    parser.add_argument("--child", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(args.child)))
        return
    sys.path.insert(0, str(Path(__file__).parent))
    from bench_corpora import ensure_long

    corpus, _, _ = ensure_long(args.workdir / "corpus-long-1h-seed0", 1.0, 0)
    results = []
    for minutes in args.minutes:
        path = build(args.workdir / f"one-file-{minutes:g}min.flac", minutes, corpus)
        proc = subprocess.run([sys.executable, __file__, "--child", str(path)], capture_output=True,
                              text=True, check=True)
        results.append(json.loads(proc.stdout.strip().splitlines()[-1]))
        r = results[-1]
        print(f"{minutes:>6g} min: peak RSS {r['peak_rss_mib']:.0f} MiB (after decode {r['peak_after_decode_mib']:.0f}), "
              f"before decode {r['rss_before_mib']:.0f} MiB, decoded audio {r['audio_mib']:.0f} MiB, "
              f"peak - before = {(r['peak_rss_mib'] - r['rss_before_mib']) / r['audio_mib']:.2f} x audio; "
              f"{r['segments']} VAD spans, {r['audio_s'] / r['wall_s']:.0f} x RT wall", flush=True)
    if len(results) >= 2:
        a, b = results[0], results[-1]
        print(f"peak RSS ratio {b['peak_rss_mib'] / a['peak_rss_mib']:.2f} for {b['audio_s'] / a['audio_s']:.0f}x the audio")
    print(json.dumps(results))


if __name__ == "__main__":
    main()
