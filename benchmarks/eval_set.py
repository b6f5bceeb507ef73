"""Real-recording evaluation set for the speech / music / noise decision, built from Debian packages.

Nothing is committed: ``build`` fetches each package by name and version (``apt-get download``),
unpacks it with ``dpkg-deb -x`` and writes ``truth.json`` (file -> category, language, package)
next to links to the chosen files. ``evaluate`` runs the clean stages in process (decode -> VAD
-> segment -> quality -> MOS off -> policy) on every file and prints, per category, the share of
files with at least one kept segment (speech >= 1.5 s should be kept; music and noise rejected).

Packages (all in Debian 12 main):
- asterisk-core-sounds-en-wav 1.6.1-1, asterisk-core-sounds-es-wav 1.6.1-1: telephone prompts
  read by one professional voice (8 kHz WAV), English and Spanish: real speech.
- asterisk-moh-opsound-wav 2.03-1.1: music-on-hold pieces (8 kHz, 3-5 min), cut into 10 s excerpts.
- sound-theme-freedesktop 0.8-2: desktop event sounds (bells, alarms, clicks: "noise"/effects) and
  the spoken ``audio-channel-*`` clips (speech).
- /usr/share/sounds/alsa (alsa-utils, installed): spoken channel names (speech), ``Noise.wav``.

Usage:
  python benchmarks/eval_set.py build --dir /tmp/evalset [--per-language 60]
  python benchmarks/eval_set.py evaluate --dir /tmp/evalset [--policy default]
"""

from __future__ import annotations

import argparse
import json
import random
from collections import Counter
from pathlib import Path

import numpy as np

PACKAGES = {
    "asterisk-core-sounds-en-wav": "1.6.1-1",
    "asterisk-core-sounds-es-wav": "1.6.1-1",
    "asterisk-moh-opsound-wav": "2.03-1.1",
    "sound-theme-freedesktop": "0.8-2",
}
MUSIC_EXCERPT_S = 10.0
MIN_SPEECH_S = 1.5


def fetch(root: Path) -> Path:
    """Download and unpack every package (pinned versions) under ``root/pkgs``; returns the tree."""
    from debian_packages import fetch_debs

    return fetch_debs(PACKAGES, root)


def _duration(path: Path) -> float:
    import soundfile as sf

    try:
        return float(sf.info(str(path)).duration)
    except RuntimeError:
        from audiomill.testing.signals import read_audio

        audio, sr = read_audio(path)
        return audio.size / sr


def build(root: Path, per_language: int, seed: int = 0) -> dict[str, dict]:
    from audiomill.testing.signals import read_audio, write_audio

    tree, rng, truth = fetch(root), random.Random(seed), {}
    files = root / "files"
    files.mkdir(parents=True, exist_ok=True)
    for lang, folder in (("en", "en_US_f_Allison"), ("es", "es_MX_f_Allison")):
        prompts = sorted(p for p in (tree / "usr/share/asterisk/sounds" / folder).rglob("*.wav")
                         if _duration(p) >= MIN_SPEECH_S)
        for path in rng.sample(prompts, min(per_language, len(prompts))):
            truth[str(path)] = {"category": "speech", "language": lang, "package": f"asterisk-core-sounds-{lang}-wav"}
    for path in sorted((tree / "usr/share/asterisk/moh").glob("*.wav")):
        audio, sr = read_audio(path)
        step = int(MUSIC_EXCERPT_S * sr)
        for i in range(0, audio.size - step + 1, 3 * step):  # every third 10 s excerpt
            out = write_audio(files / f"{path.stem}_{i // step:03d}.wav", audio[i:i + step], sr)
            truth[str(out)] = {"category": "music", "package": "asterisk-moh-opsound-wav"}
    for path in sorted((tree / "usr/share/sounds/freedesktop/stereo").glob("*.oga")):
        spoken = path.stem.startswith("audio-channel-")
        truth[str(path)] = {"category": "speech" if spoken else "noise", "language": "en" if spoken else None,
                            "package": "sound-theme-freedesktop"}
    for path in sorted(Path("/usr/share/sounds/alsa").glob("*.wav")):
        spoken = path.stem != "Noise"
        truth[str(path)] = {"category": "speech" if spoken else "noise", "language": "en" if spoken else None,
                            "package": "alsa-utils"}
    (root / "truth.json").write_text(json.dumps(truth, indent=1, sort_keys=True))
    return truth


def evaluate(root: Path, policy: str) -> dict:
    """Share of files per category with a kept segment under ``policy``, and the reject reasons."""
    import pyarrow as pa

    from audiomill import schema
    from audiomill.config import DecodeConfig, IngestConfig, VadConfig
    from audiomill.curation.policy import load_policy
    from audiomill import ingest
    from audiomill.pipelines.decode import DecodeStage
    from audiomill.pipelines.policy import PolicyStage
    from audiomill.pipelines.quality import QualityStage
    from audiomill.pipelines.segment import SegmentStage
    from audiomill.pipelines.vad import VadStage

    truth = json.loads((root / "truth.json").read_text())
    stages = [DecodeStage(DecodeConfig()), VadStage(VadConfig()), SegmentStage(), QualityStage(),
              PolicyStage(load_policy(policy))]
    rows = []
    for part in ingest.iter_parts(ingest.iter_sources(sorted(truth), IngestConfig()), 32):
        for stage in stages:
            part = stage(part)
        rows.extend(part.select([schema.SOURCE_URI, schema.REJECT_REASON, schema.REJECT_DETAIL]
                                + [c for c in (schema.Q_MUSIC_SCORE,) if c in part.column_names]).to_pylist())
    kept = {uri for uri in truth if any(r[schema.SOURCE_URI] == uri and not r[schema.REJECT_REASON] for r in rows)}
    report: dict = {}
    for category in ("speech", "music", "noise"):
        uris = [u for u, t in truth.items() if t["category"] == category]
        reasons = Counter()
        for r in rows:
            if r[schema.SOURCE_URI] in uris and r[schema.REJECT_REASON]:
                detail = r[schema.REJECT_DETAIL] or ""
                reasons[r[schema.REJECT_REASON] + (":" + detail.split(" ")[0] if r[schema.REJECT_REASON] == "policy" else "")] += 1
        report[category] = {"files": len(uris), "kept_share": sum(u in kept for u in uris) / max(1, len(uris)),
                            "segment_reject_reasons": dict(reasons.most_common(8))}
    return report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("command", choices=["build", "evaluate"])
    parser.add_argument("--dir", type=Path, required=True)
    parser.add_argument("--per-language", type=int, default=60)
    parser.add_argument("--policy", default="default")
    args = parser.parse_args()
    if args.command == "build":
        truth = build(args.dir, args.per_language)
        print(json.dumps(Counter(t["category"] for t in truth.values())))
    else:
        print(json.dumps(evaluate(args.dir, args.policy), indent=2))


if __name__ == "__main__":
    np.seterr(all="ignore")
    main()
