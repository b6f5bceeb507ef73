"""Real-recording evaluation set for the speech / music / noise decision, built from Debian packages.

Nothing is committed: ``build`` fetches each package by name and version (``apt-get download``),
unpacks it with ``dpkg-deb -x`` and writes ``truth.json`` (file -> category, language, package)
next to links to the chosen files. ``evaluate`` runs the clean stages in process (decode -> VAD
-> segment -> quality -> MOS off -> policy) on every file and prints, per category, the share of
files with at least one kept segment (speech >= 1.5 s should be kept; music, noise and silence
rejected).

Packages (all in Debian 12 main):
- asterisk-core-sounds-en-wav 1.6.1-1, asterisk-core-sounds-es-wav 1.6.1-1: telephone prompts
  read by one professional voice (8 kHz WAV), English and Spanish: real speech; their
  ``silence/N.wav`` files (N seconds of line silence) are the ``silence`` category.
- asterisk-moh-opsound-wav 2.03-1.1: music-on-hold pieces (8 kHz, 3-5 min), cut into 10 s excerpts.
- sound-theme-freedesktop 0.8-2: desktop event sounds (bells, alarms, clicks: "noise"/effects) and
  the spoken ``audio-channel-*`` clips (speech).
- /usr/share/sounds/alsa (alsa-utils, installed): spoken channel names (speech), ``Noise.wav``.

Planted speech (real prompts, transformed; must still be kept), ``--planted`` per language:
- ``reverb``: a pyroomacoustics room at RT60 0.4-0.9 s;
- ``music_bed``: a real music-on-hold excerpt under the speech at 10-20 dB SNR;
- ``noise_bed``: alsa ``Noise.wav`` (looped) under the speech at 15-25 dB SNR.
Reported as their own rows (``speech/reverb`` ...), so the real-speech rows stay comparable.

``calibrate`` loosens each bound of ``--policy`` until it keeps ``--keep`` of the speech segments
of one half of the set (split by original recording), then reports both policies on the other half.

Usage:
  python benchmarks/eval_set.py build --dir /tmp/evalset [--per-language 60] [--planted 20]
  python benchmarks/eval_set.py evaluate --dir /tmp/evalset [--policy default]
  python benchmarks/eval_set.py calibrate --dir /tmp/evalset [--policy default] [--keep 0.99] [--out P]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import random
from collections import Counter
from pathlib import Path

import numpy as np
import pyarrow as pa
import yaml

from audiomill import schema
from audiomill.curation.policy import Policy

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


def build(root: Path, per_language: int, planted: int = 20, seed: int = 0) -> dict[str, dict]:
    from audiomill.testing.signals import read_audio, write_audio

    tree, rng, truth = fetch(root), random.Random(seed), {}
    files = root / "files"
    files.mkdir(parents=True, exist_ok=True)
    chosen: list[Path] = []
    for lang, folder in (("en", "en_US_f_Allison"), ("es", "es_MX_f_Allison")):
        recordings = sorted((tree / "usr/share/asterisk/sounds" / folder).rglob("*.wav"))
        for path in (p for p in recordings if p.parent.name == "silence"):  # N seconds of room tone
            truth[str(path)] = {"category": "silence", "package": f"asterisk-core-sounds-{lang}-wav"}
        prompts = [p for p in recordings if p.parent.name != "silence" and _duration(p) >= MIN_SPEECH_S]
        for path in rng.sample(prompts, min(per_language, len(prompts))):
            truth[str(path)] = {"category": "speech", "language": lang, "package": f"asterisk-core-sounds-{lang}-wav"}
        chosen += sorted(rng.sample(prompts, min(planted, len(prompts))))
    truth.update(_planted(chosen, sorted((tree / "usr/share/asterisk/moh").glob("*.wav")), files, seed))
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


def _planted(prompts: list[Path], music: list[Path], files: Path, seed: int) -> dict[str, dict]:
    """Reverberant, music-bed and noise-bed copies of real prompts (16 kHz), as truth entries."""
    from audiomill.models.generation.scene import mix_at_snr, reverberate
    from audiomill.testing.signals import read_audio, resample, write_audio

    rng = np.random.default_rng(seed)
    beds = [resample(*read_audio(p), 16_000) for p in music]
    noise = resample(*read_audio(Path("/usr/share/sounds/alsa/Noise.wav")), 16_000)
    truth = {}
    for i, path in enumerate(prompts):
        speech = resample(*read_audio(path), 16_000)
        bed = beds[i % len(beds)]
        start = int(rng.integers(0, max(1, bed.size - speech.size)))
        variants = {
            "reverb": reverberate(speech, float(rng.uniform(0.4, 0.9)), seed=i),
            "music_bed": mix_at_snr(speech, bed[start:start + speech.size], float(rng.uniform(10, 20))),
            "noise_bed": mix_at_snr(speech, np.resize(noise, speech.size), float(rng.uniform(15, 25))),
        }
        for variant, audio in variants.items():
            out = write_audio(files / f"{variant}_{i:03d}_{path.stem}.wav", np.clip(audio, -1, 1), 16_000)
            truth[str(out)] = {"category": "speech", "variant": variant, "source": str(path),
                               "package": "asterisk-core-sounds (planted)"}
    return truth


def held_out(entry: dict, uri: str) -> bool:
    """The half of the set that ``calibrate`` never sees: by a hash of the original recording, so a
    prompt and its planted copies fall on the same side."""
    return int(hashlib.sha1(entry.get("source", uri).encode()).hexdigest(), 16) % 2 == 1


def segments(root: Path, speech_model: str = "") -> tuple[dict, pa.Table]:
    """(truth, every segment and reject row of every file) through decode -> VAD -> segment ->
    quality (-> the speech/music classifier, given a model), in process; the policy is applied
    afterwards, so one pass serves every policy."""
    from audiomill import ingest
    from audiomill.config import DecodeConfig, IngestConfig, VadConfig
    from audiomill.pipelines.decode import DecodeStage
    from audiomill.pipelines.quality import QualityStage
    from audiomill.pipelines.segment import SegmentStage
    from audiomill.pipelines.vad import VadStage

    truth = json.loads((root / "truth.json").read_text())
    stages = [DecodeStage(DecodeConfig()), VadStage(VadConfig()), SegmentStage(), QualityStage()]
    if speech_model:
        from audiomill.config import SpeechMusicConfig
        from audiomill.models.registry import resolve_model
        from audiomill.pipelines.speech_music import SpeechMusicStage

        stages.append(SpeechMusicStage(SpeechMusicConfig(enabled=True, model=speech_model), resolve_model(speech_model)))
    tables = []
    for part in ingest.iter_parts(ingest.iter_sources(sorted(truth), IngestConfig()), 32):
        for stage in stages:
            part = stage(part)
        tables.append(part.drop_columns([c for c in (schema.AUDIO,) if c in part.column_names]))
    return truth, pa.concat_tables(tables, promote_options="permissive")


def evaluate(truth: dict, rows: pa.Table, policy: Policy, subset: str = "all") -> dict:
    """Share of files per category (and planted variant) with a kept segment under ``policy``,
    with the reject reasons; ``subset``: all, calibration or held_out."""
    from audiomill.pipelines.policy import PolicyStage

    judged = PolicyStage(policy)(rows).select([schema.SOURCE_URI, schema.REJECT_REASON, schema.REJECT_DETAIL]).to_pylist()
    wanted = {u for u, t in truth.items() if subset == "all" or held_out(t, u) == (subset == "held_out")}
    kept = {r[schema.SOURCE_URI] for r in judged if not r[schema.REJECT_REASON]}
    report: dict = {}
    groups = sorted({(t["category"], t.get("variant")) for t in truth.values()}, key=str)
    for category, variant in groups:
        uris = {u for u, t in truth.items() if u in wanted and (t["category"], t.get("variant")) == (category, variant)}
        reasons = Counter()
        for r in judged:
            if r[schema.SOURCE_URI] in uris and r[schema.REJECT_REASON]:
                detail = r[schema.REJECT_DETAIL] or ""
                reasons[r[schema.REJECT_REASON] + (":" + detail.split("=")[0] if r[schema.REJECT_REASON] == "policy" else "")] += 1
        report[category + (f"/{variant}" if variant else "")] = {
            "files": len(uris), "kept_share": sum(u in kept for u in uris) / max(1, len(uris)),
            "segment_reject_reasons": dict(reasons.most_common(8))}
    return report


def calibrate(truth: dict, rows: pa.Table, base: Policy, keep: float) -> Policy:
    """``base`` with each bound loosened (never tightened) until it alone keeps ``keep`` of the
    calibration half's speech segments (real and planted), rounded outward to 0.05."""
    from audiomill.curation.policy import numeric_column

    speech = [truth[u]["category"] == "speech" and not held_out(truth[u], u) and not reason
              for u, reason in zip(rows[schema.SOURCE_URI].to_pylist(), rows[schema.REJECT_REASON].to_pylist())]
    calib = rows.filter(pa.array(speech))
    rules = {}
    for name, rule in base.rules.items():
        if name not in calib.column_names:  # e.g. asr_language_prob with ASR off: kept as it is
            rules[name] = rule
            continue
        values = numeric_column(calib, name)
        values = values[np.isfinite(values)]
        low, high = rule.min, rule.max
        if low is not None and values.size:
            low = min(low, float(np.floor(np.quantile(values, 1 - keep) * 20) / 20))
        if high is not None and values.size:
            high = max(high, float(np.ceil(np.quantile(values, keep) * 20) / 20))
        rules[name] = rule.model_copy(update={"min": low, "max": high})
    return Policy(name=f"{base.name}-calibrated", description=f"{base.name} loosened to keep {keep:.0%} of the "
                  "calibration half's real and planted speech segments per rule", rules=rules)


def second_line(truth: dict, speech_model: str) -> dict:
    """Whole files, VAD skipped: how often the tonal rule (``q_music_score`` > 0.3) and the
    classifier (``q_speech_prob`` < 0.5) flag each category as not speech. VAD rejects all the real
    music here; this measures the rule that has to catch music VAD lets through (sung music)."""
    from audiomill.curation.quality import segment_metrics
    from audiomill.models.registry import resolve_model
    from audiomill.models.speech_music import SpeechMusicModel
    from audiomill.testing.signals import read_audio, resample

    model = SpeechMusicModel.load(resolve_model(speech_model).local_dir(""))
    report = {}
    for group in sorted({t["category"] + "/" + (t.get("variant") or "real") for t in truth.values()}):
        clips = [resample(*read_audio(Path(u)), 16_000) for u, t in truth.items()
                 if t["category"] + "/" + (t.get("variant") or "real") == group]
        music = segment_metrics(np.concatenate(clips), np.cumsum([0] + [c.size for c in clips]))[schema.Q_MUSIC_SCORE]
        speech = model.speech_probability(clips)
        report[group] = {"files": len(clips), "tonal_rule_flags": float(np.mean(np.asarray(music) > 0.3)),
                         "classifier_flags": float(np.mean(speech < 0.5))}
    return report


def _print(report: dict, title: str) -> None:
    print(f"\n{title}\n| category | files | kept | reject reasons (segments) |\n|---|---|---|---|")
    for name, row in report.items():
        print(f"| {name} | {row['files']} | {row['kept_share']:.1%} | {row['segment_reject_reasons'] or ''} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("command", choices=["build", "evaluate", "calibrate"])
    parser.add_argument("--dir", type=Path, required=True)
    parser.add_argument("--per-language", type=int, default=60)
    parser.add_argument("--planted", type=int, default=20, help="prompts per language made into planted copies")
    parser.add_argument("--policy", default="default")
    parser.add_argument("--keep", type=float, default=0.99, help="calibrate: speech share each rule must keep")
    parser.add_argument("--out", type=Path, help="calibrate: write the calibrated policy here (YAML)")
    parser.add_argument("--speech-model", default="", help="add q_speech_prob from this speech/music model "
                        "(registry ref or dir; `audiomill models train-speech-music`)")
    args = parser.parse_args()
    if args.command == "build":
        truth = build(args.dir, args.per_language, args.planted)
        print(json.dumps(Counter(t["category"] + "/" + (t.get("variant") or "real") for t in truth.values())))
        return
    from audiomill.curation.policy import load_policy

    truth, rows = segments(args.dir, args.speech_model)
    policy = load_policy(args.policy)
    if args.command == "evaluate":
        _print(evaluate(truth, rows, policy), f"policy {args.policy}, all files")
        if args.speech_model:
            print("\nwhole files, VAD skipped: share flagged as not speech\n| group | files | tonal rule | classifier |\n|---|---|---|---|")
            for name, row in second_line(truth, args.speech_model).items():
                print(f"| {name} | {row['files']} | {row['tonal_rule_flags']:.1%} | {row['classifier_flags']:.1%} |")
        return
    calibrated = calibrate(truth, rows, policy, args.keep)
    print(json.dumps({n: r.model_dump(exclude_none=True) for n, r in calibrated.rules.items()}))
    if args.out:
        args.out.write_text(yaml.safe_dump(calibrated.model_dump(exclude_none=True), sort_keys=False))
    for name, chosen in ((args.policy, policy), ("calibrated", calibrated)):
        _print(evaluate(truth, rows, chosen, "held_out"), f"policy {name}, held-out half")


if __name__ == "__main__":
    np.seterr(all="ignore")
    main()
