"""Duplicate clusters on REAL recordings with planted copies, through the real clean job (issue 13).

Goals measured (nothing is asserted): a planted cluster keeps its pristine original >= 95%, no
cluster keeps content twice, the same sentence by different speakers is never merged.

Originals (fetched by package name and version with ``debian_packages.fetch_debs``; never
committed), 1.5-10 s, drawn with a fixed seed:
- asterisk-core-sounds-en-wav / -es-wav 1.6.1-1: telephone prompts, one voice each (8 kHz WAV);
- fillets-ng-data-cs / -nl 1.0.1-1.1: acted Czech and Dutch game dialogue (22 kHz Ogg Vorbis);
- /usr/share/sounds/alsa/*.wav (alsa-utils): spoken channel names (48 kHz).
Each original is written as a pristine 16-bit WAV at its native rate. Planted copies (the
transformations of ``audiomill.testing.dedup_set``): a real 64 kbps MP3 file (44.1 kHz), white
noise at 20 dB SNR, an 11.025 kHz WAV, narrowband (8 kHz and back to 16 kHz), +6 dB and -6 dB gain,
and a byte-identical copy of every third original. Every file gets a hashed name, so the
smallest-key tie-break does not favour the original.

Hard negatives (same sentence, different speakers; must never share a cluster):
- real: Italian prompts with the same file name in asterisk-core-sounds-it-wav 1.6.1-1 (Carlo,
  male) and asterisk-prompt-it-menardi-wav 1:1.4.22+mm20110907-3.1 (Menardi, female): the same
  Asterisk prompt read by two speakers (their translations may differ in a word);
- generated: espeak-ng sentences in three voices (rows labelled ``generated``).

Each policy runs ``audiomill.jobs.clean.run_clean`` (``runner.kind=local``, default dedup config)
once over all files; the fates come from ``index.parquet``, ``rejects.parquet`` (``duplicate_of``)
and ``dedup.parquet`` (``cluster_id``). Where the kept member is not the original, the winning
transformation and its keep-score terms (``keep_score.score_terms``; MOS left out, as the default
``mos.coverage=sample`` leaves it out of the keep score) are printed beside the original's, and the
cluster is classed: ``tie`` (the kept copy scores within TIE of the original: a +-6 dB copy, or an
11.025 kHz copy of an 8 kHz prompt, holds the same content and only measurement noise or the
duration/key tie-break decides), ``same_content`` (a lossless copy whose native band, SNR and
clipping match the original's: e.g. an 11.025 kHz copy of a 22 kHz original whose content ends
below 5.5 kHz; no audio measurement can order the two), ``copy_scored_higher``, or the original
never competed
(``original_no_segment``: VAD found no speech; ``original_policy``: the policy dropped it).
``pristine_kept_share`` counts clusters whose original competed.

Usage:
  PYTHONPATH=. python benchmarks/dedup_real.py --dir /tmp/dedupreal [--originals 40] [--seed 0]
      [--policy default --policy null] [--json out.json]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import random
import shutil
import sys
from collections import Counter, defaultdict
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from audiomill import layout, schema
from audiomill.curation.dedup.keep_score import WEIGHTS, score_terms
from audiomill.testing import signals
from audiomill.testing.corpus import EN
from audiomill.testing.dedup_set import resample, transforms

PACKAGES = {
    "asterisk-core-sounds-en-wav": "1.6.1-1",
    "asterisk-core-sounds-es-wav": "1.6.1-1",
    "asterisk-core-sounds-it-wav": "1.6.1-1",
    "asterisk-prompt-it-menardi-wav": "1:1.4.22+mm20110907-3.1",
    "fillets-ng-data-cs": "1.0.1-1.1",
    "fillets-ng-data-nl": "1.0.1-1.1",
}
ASTERISK = "usr/share/asterisk/sounds"
ORIGINAL_SOURCES = {  # group -> glob under the unpacked tree (alsa: absolute)
    "asterisk-en": f"{ASTERISK}/en_US_f_Allison/**/*.wav",
    "asterisk-es": f"{ASTERISK}/es_MX_f_Allison/**/*.wav",
    "fillets-cs": "usr/share/games/fillets-ng/sound/**/cs/*.ogg",
    "fillets-nl": "usr/share/games/fillets-ng/sound/**/nl/*.ogg",
}
ALSA = Path("/usr/share/sounds/alsa")
ITALIAN_VOICES = {"carlo": f"{ASTERISK}/it_IT_m_Carlo", "menardi": f"{ASTERISK}/it_IT_f_Menardi"}
GENERATED_VOICES = ("en", "en+f3", "en+m3")
MIN_S, MAX_S = 1.5, 10.0
MP3_RATE, MP3_BIT_RATE = 44_100, 64_000
TIE = 0.02  # keep-score difference of about one 31 Hz bandwidth bin and a little SNR
SAME_HZ, SAME_SNR, SAME_CLIP = 125.0, 0.025, 0.02  # same_content: native band, SNR (1 dB), clipping terms
COPIES = ("mp3_64k", "noise20", "rs11k", "narrowband", "gain+6", "gain-6", "byte_copy")


def _duration(path: Path) -> float:
    import soundfile as sf

    return float(sf.info(str(path)).duration)


def _name(*parts: str, suffix: str = ".wav") -> str:
    return hashlib.sha1("|".join(parts).encode()).hexdigest()[:12] + suffix


def pick_originals(tree: Path, count: int, seed: int) -> list[tuple[str, Path]]:
    """``count`` (group, path) originals of MIN_S..MAX_S, spread over the groups, deterministic."""
    rng = random.Random(seed)
    pools = {g: sorted(tree.glob(p)) for g, p in ORIGINAL_SOURCES.items()}
    pools["alsa"] = sorted(p for p in ALSA.glob("*.wav") if p.stem != "Noise")
    share = {"alsa": min(4, len(pools["alsa"]))}
    rest = (count - share["alsa"]) // len(ORIGINAL_SOURCES)
    chosen = []
    for group, paths in pools.items():
        rng.shuffle(paths)
        want = share.get(group, rest)
        chosen += [(group, p) for p in paths if MIN_S <= _duration(p) <= MAX_S][:want]
    return chosen


def write_copies(original: Path, files: Path, index: int, seed: int) -> dict[str, dict]:
    """The pristine WAV (native rate) and its planted copies; truth entries by file path."""
    audio, sr = signals.read_audio(original)
    audio16 = resample(audio, sr, schema.SAMPLE_RATE)
    made = transforms(audio16, seed + index, (audio16[:0], audio16[:0]))
    label = str(original)
    base = signals.write_audio(files / _name(label, "original"), audio, sr)
    out = {str(base): "original"}
    mp3 = files / _name(label, "mp3_64k", suffix=".mp3")
    signals.write_audio(mp3, resample(audio, sr, MP3_RATE), MP3_RATE, bit_rate=MP3_BIT_RATE)
    out[str(mp3)] = "mp3_64k"
    for transform, audio_out, rate in (("noise20", made["noise20"], schema.SAMPLE_RATE),
                                       ("rs11k", resample(audio, sr, 11_025), 11_025),
                                       ("narrowband", made["rs8k"], schema.SAMPLE_RATE),
                                       ("gain+6", made["gain+6"], schema.SAMPLE_RATE),
                                       ("gain-6", made["gain-6"], schema.SAMPLE_RATE)):
        out[str(signals.write_audio(files / _name(label, transform), audio_out, rate))] = transform
    if index % 3 == 0:
        out[str(shutil.copyfile(base, files / _name(label, "byte_copy")))] = "byte_copy"
    return {path: {"kind": "planted", "original": label, "transform": t} for path, t in out.items()}


def hard_negatives(tree: Path, files: Path, pairs: int, seed: int) -> dict[str, dict]:
    """Same Italian prompt by Carlo and Menardi (real), and espeak-ng sentences in three voices."""
    roots = {v: tree / p for v, p in ITALIAN_VOICES.items()}
    stems = sorted({p.relative_to(roots["carlo"]) for p in roots["carlo"].rglob("*.wav")}
                   & {p.relative_to(roots["menardi"]) for p in roots["menardi"].rglob("*.wav")})
    random.Random(seed).shuffle(stems)
    usable = [s for s in stems if s.parts[0] != "silence"  # silence/N.wav: N seconds of silence, no sentence
              and all(MIN_S <= _duration(roots[v] / s) <= MAX_S for v in roots)][:pairs]
    truth = {}
    for stem in usable:
        for voice, root in roots.items():
            path = shutil.copyfile(root / stem, files / _name("it", str(stem), voice))
            truth[str(path)] = {"kind": "negative", "sentence": f"it:{stem}", "speaker": voice, "generated": False}
    for i, text in enumerate(EN[:4]):
        for voice in GENERATED_VOICES:
            audio, sr = signals.espeak(text, voice)
            path = signals.write_audio(files / _name("espeak", str(i), voice), audio, sr)
            truth[str(path)] = {"kind": "negative", "sentence": f"espeak:{i}", "speaker": voice, "generated": True}
    return truth


def build(root: Path, count: int, seed: int, pairs: int) -> dict[str, dict]:
    sys.path.insert(0, str(Path(__file__).parent))
    from debian_packages import fetch_debs

    tree, files = fetch_debs(PACKAGES, root), root / "files"
    if files.exists():
        shutil.rmtree(files)
    files.mkdir(parents=True)
    truth: dict[str, dict] = {}
    for i, (group, path) in enumerate(pick_originals(tree, count, seed)):
        for file, entry in write_copies(path, files, i, seed).items():
            truth[file] = {**entry, "group": group}
    truth.update(hard_negatives(tree, files, pairs, seed))
    (root / "truth.json").write_text(json.dumps(truth, indent=1, sort_keys=True))
    return truth


def run_job(files: Path, out: Path, policy: str) -> pa.Table:
    """One local clean; every segment row (kept and rejected) with its cluster id."""
    from audiomill.config import load_config
    from audiomill.jobs.clean import run_clean

    cfg = load_config(inputs=[str(files)], output=str(out),
                      overrides=["runner.kind=local", f"policy={policy}"])
    run_clean(cfg)
    kept = pq.read_table(out / layout.INDEX_FILE)
    rejects = pq.read_table(out / layout.REJECTS_FILE)
    rows = pa.concat_tables([kept, rejects], promote_options="permissive")
    clusters = {r[schema.KEY]: r[schema.DEDUP_CLUSTER_ID] for r in pq.read_table(out / layout.DEDUP_FILE).to_pylist()}
    return rows.append_column(schema.DEDUP_CLUSTER_ID, pa.array([clusters.get(k) for k in rows[schema.KEY].to_pylist()],
                                                               pa.string()))


def _fates(rows: pa.Table) -> dict[str, list[dict]]:
    """Per source file: its segments' key, reject reason, duplicate_of, cluster and keep-score terms."""
    terms = score_terms(rows, mos_column=None)  # default mos.coverage=sample: MOS stays out of the keep score
    total = sum(WEIGHTS[n] * v for n, v in terms.items())
    by_file: dict[str, list[dict]] = defaultdict(list)
    native = rows[schema.ORIG_BANDWIDTH_HZ].to_pylist()
    for i, r in enumerate(rows.select([schema.SOURCE_URI, schema.KEY, schema.REJECT_REASON, schema.REJECT_DETAIL,
                                       schema.DUPLICATE_OF, schema.DEDUP_CLUSTER_ID]).to_pylist()):
        r["terms"] = {n: round(float(v[i]), 3) for n, v in terms.items()} | {"total": round(float(total[i]), 3),
                                                                          "native_hz": native[i]}
        by_file[r[schema.SOURCE_URI]].append(r)
    return by_file


def _reason(segment: dict) -> str:
    reason = segment[schema.REJECT_REASON] or "kept"
    detail = segment[schema.REJECT_DETAIL] or ""
    return f"policy:{detail.split('=')[0].split()[0]}" if reason == "policy" and detail else reason


def planted_report(truth: dict, by_file: dict[str, list[dict]]) -> dict:
    """Per original's cluster: which members kept a segment; per transformation: copies caught."""
    owner = {s[schema.KEY]: truth.get(f, {}).get("original") for f, segs in by_file.items() for s in segs}
    groups: dict[str, dict[str, str]] = defaultdict(dict)
    for path, t in truth.items():
        if t["kind"] == "planted":
            groups[t["original"]][path] = t["transform"]
    clusters, per_transform, cross = [], defaultdict(lambda: defaultdict(int)), 0
    for original, members in sorted(groups.items()):
        kept = sorted({members[p] for p in members if any(not s[schema.REJECT_REASON] for s in by_file.get(p, []))})
        for path, transform in members.items():
            reasons = {_reason(s) for s in by_file.get(path, [])} or {"no_segment"}
            key = "kept" if "kept" in reasons else sorted(reasons)[0]
            per_transform[transform][key.split(":")[0] if key.startswith("duplicate") else key] += 1
            cross += sum(1 for s in by_file.get(path, []) if s[schema.DUPLICATE_OF]
                         and owner.get(s[schema.DUPLICATE_OF]) != original)
        entry = {"original": original, "group": truth[next(iter(members))]["group"], "kept": kept,
                 "pristine_kept": bool(set(kept) & {"original", "byte_copy"}), "twice": len(kept) > 1}
        entry["outcome"] = _outcome(entry, members, by_file)
        if not entry["pristine_kept"] or entry["twice"]:
            entry["why"] = {members[p]: [{"reason": _reason(s), **s["terms"]} for s in by_file.get(p, [])]
                            for p in members if members[p] in set(kept) | {"original"}}
        clusters.append(entry)
    copies = {t: dict(c) for t, c in per_transform.items() if t != "original"}
    caught = sum(c.get(r, 0) for c in copies.values() for r in ("duplicate_exact", "duplicate_audio", "duplicate_text"))
    return {"clusters": clusters, "per_transform": {t: dict(c) for t, c in per_transform.items()},
            "copies": sum(sum(c.values()) for c in copies.values()), "copies_caught": caught,
            "copies_pointing_at_other_content": cross}


def _outcome(entry: dict, members: dict[str, str], by_file: dict[str, list[dict]]) -> str:
    """pristine | tie (a copy kept with a keep score within TIE of the original's: measurement
    noise decides) | same_content (see the module docstring) | copy_scored_higher |
    original_no_segment (VAD) | original_policy | nothing_kept."""
    if entry["pristine_kept"]:
        return "pristine"
    original = next(p for p, t in members.items() if t == "original")
    reasons = {_reason(s) for s in by_file.get(original, [])}
    if not reasons or reasons <= {"no_speech", "speech_too_short"}:
        return "original_no_segment"
    if any(r.startswith("policy") for r in reasons):
        return "original_policy"
    if not entry["kept"]:
        return "nothing_kept"
    best = {t: max((s["terms"] for s in by_file[p]), key=lambda terms: terms["total"])
            for p, t in members.items() if by_file.get(p)}
    kept, first = best[entry["kept"][0]], best["original"]
    if abs(kept["total"] - first["total"]) <= TIE:
        return "tie"
    same = (kept["codec"] == first["codec"] == 1.0 and (kept["native_hz"] or 0) >= (first["native_hz"] or 0) - SAME_HZ
            and abs(kept["snr"] - first["snr"]) <= SAME_SNR and abs(kept["clipping"] - first["clipping"]) <= SAME_CLIP)
    return "same_content" if same else "copy_scored_higher"


def negative_report(truth: dict, by_file: dict[str, list[dict]]) -> list[dict]:
    """Per hard-negative sentence: speakers whose segments share a dedup cluster (a false merge)."""
    sentences: dict[str, dict[str, set]] = defaultdict(dict)
    generated = {}
    for path, t in truth.items():
        if t["kind"] == "negative":
            segs = by_file.get(path, [])
            # a file rejected before segmenting (no_speech) has no key and joins no cluster
            sentences[t["sentence"]][t["speaker"]] = {s[schema.DEDUP_CLUSTER_ID] or s[schema.KEY] for s in segs
                                                      if s[schema.KEY]}
            generated[t["sentence"]] = t["generated"]
    rows = []
    for sentence, speakers in sorted(sentences.items()):
        names = sorted(speakers)
        merged = [(a, b) for i, a in enumerate(names) for b in names[i + 1:] if speakers[a] & speakers[b]]
        rows.append({"sentence": sentence, "generated": generated[sentence], "speakers": len(names),
                     "with_segments": sum(bool(v) for v in speakers.values()), "merged_pairs": merged})
    return rows


def summary(planted: dict, negatives: list[dict]) -> dict:
    clusters = planted["clusters"]
    judged = [c for c in clusters if c["outcome"] not in ("original_no_segment", "original_policy")]
    out = {"clusters": len(clusters), "clusters_judged": len(judged),
           "pristine_kept_share": sum(c["pristine_kept"] for c in judged) / max(1, len(judged)),
           "pristine_or_tie_share": sum(c["outcome"] in ("pristine", "tie") for c in judged) / max(1, len(judged)),
           "pristine_or_same_content_share": sum(c["outcome"] in ("pristine", "tie", "same_content") for c in judged)
           / max(1, len(judged)),
           **{f"outcome_{o}": sum(c["outcome"] == o for c in clusters) for o in
              ("pristine", "tie", "same_content", "copy_scored_higher", "original_no_segment", "original_policy",
               "nothing_kept")},
           "winners_scored_higher": dict(sorted(Counter(c["kept"][0] for c in clusters
                                                        if c["outcome"] == "copy_scored_higher").items())),
           "kept_twice": sum(c["twice"] for c in clusters),
           "nothing_kept": sum(not c["kept"] for c in clusters),
           "copy_recall": planted["copies_caught"] / max(1, planted["copies"]),
           "copies_pointing_at_other_content": planted["copies_pointing_at_other_content"]}
    for label, gen in (("real", False), ("generated", True)):
        rows = [r for r in negatives if r["generated"] == gen]
        out[f"negative_sentences_{label}"] = len(rows)
        out[f"false_merges_{label}"] = sum(len(r["merged_pairs"]) for r in rows)
    return out


def print_tables(policy: str, planted: dict, negatives: list[dict], totals: dict) -> None:
    print(f"\n## policy={policy}\n\n| metric | value | goal |\n|---|---|---|")
    goals = {"pristine_kept_share": ">= 95% (clusters whose original got a segment past VAD and policy)", "kept_twice": "0", "false_merges_real": "0", "false_merges_generated": "0"}
    for name, value in totals.items():
        shown = f"{value:.1%}" if isinstance(value, float) else value
        print(f"| {name} | {shown} | {goals.get(name, '')} |")
    print("\n| transformation | files | fates |\n|---|---|---|")
    for transform, fates in sorted(planted["per_transform"].items()):
        print(f"| {transform} | {sum(fates.values())} | {dict(sorted(fates.items()))} |")
    by_group: dict[str, list] = defaultdict(list)
    for c in planted["clusters"]:
        by_group[c["group"]].append(c)
    print("\n| originals from | clusters | pristine kept | kept twice | outcomes |\n|---|---|---|---|---|")
    for group, cs in sorted(by_group.items()):
        print(f"| {group} | {len(cs)} | {sum(c['pristine_kept'] for c in cs) / len(cs):.0%} | "
              f"{sum(c['twice'] for c in cs)} | {dict(Counter(c['outcome'] for c in cs))} |")
    print("\n| hard negatives | sentences | speakers each | false merges |\n|---|---|---|---|")
    for gen in (False, True):
        rows = [r for r in negatives if r["generated"] == gen]
        merged = [(r["sentence"], p) for r in rows for p in r["merged_pairs"]]
        print(f"| {'generated (espeak-ng)' if gen else 'real (it Carlo vs Menardi)'} | {len(rows)} | "
              f"{max((r['speakers'] for r in rows), default=0)} | {len(merged)} {merged[:5] or ''} |")
    for c in planted["clusters"]:
        if "why" in c:
            print(f"\n{c['outcome']}: {Path(c['original']).name} ({c['group']}) kept {c['kept']}")
            for transform, segs in c["why"].items():
                print(f"  {transform}: {segs}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dir", type=Path, required=True)
    parser.add_argument("--originals", type=int, default=40)
    parser.add_argument("--negative-pairs", type=int, default=12, help="real Italian same-prompt pairs")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--policy", action="append", help="default (shipped) and/or null; both if omitted")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    truth = build(args.dir, args.originals, args.seed, args.negative_pairs)
    results = {}
    for policy in args.policy or ["default", "null"]:
        out = args.dir / f"out-{policy}"
        if out.exists():
            shutil.rmtree(out)
        by_file = _fates(run_job(args.dir / "files", out, policy))
        planted, negatives = planted_report(truth, by_file), negative_report(truth, by_file)
        totals = summary(planted, negatives)
        print_tables(policy, planted, negatives, totals)
        results[policy] = {"summary": totals, "per_transform": planted["per_transform"],
                           "not_pristine": [c for c in planted["clusters"] if "why" in c], "negatives": negatives}
    print("\n" + json.dumps({p: r["summary"] for p, r in results.items()}, indent=1))
    if args.json:
        args.json.write_text(json.dumps(results, indent=1, default=str))


if __name__ == "__main__":
    np.seterr(all="ignore")
    main()
