"""Self-labeling rounds: does verification catch wrong labels, does the loop help, what does it cost?

Part A (always): heads trained on a generated seed set; an evaluation set of generated clips
(another seed) + the real alsa clips gets its TRUE labels, then wrong ones are planted: a share
of transcripts swapped with another clip's (different) text, a share of genders flipped and a
share of SNR bands moved to another band. Every label is re-synthesized and verified against the
original. Prints the share of planted errors caught (goal >= 80%), the share of correct labels
wrongly rejected (goal <= 10%), per kind and per origin (generated / real), and seconds per clip
of each phase (hear = annotate, resynthesize, verify).

Part B (``--rounds N``): N real rounds (`run_rounds`, Ray) on a cleaned dataset of generated +
real clips; prints per round the held-out accuracy of parent and candidate heads, the acceptance
rate and the wall seconds per verified clip of each phase.

    PYTHONPATH=. python benchmarks/rounds.py --seed-clips 32 --eval-clips 16 [--calibration-clips 32] [--rounds 3]
"""

from __future__ import annotations

import argparse
import collections
import tempfile
import time
from pathlib import Path

import numpy as np

from audiomill import schema
from audiomill.annotation import Annotation, FieldValue
from audiomill.models.understanding import training
from audiomill.models.understanding.heads import AttributeHeads, encode_labels
from audiomill.rounds import seed
from audiomill.rounds.config import VerifyThresholds
from audiomill.rounds.worker import RoundWorker, WorkerSpec
from audiomill.testing.whisper import real_whisper_dir

BATCH = 8


def _truthful(clip: seed.SeedClip, heard: Annotation) -> Annotation:
    """The model's annotation with every known field replaced by the truth (measures kept)."""
    fields = dict(heard.fields)
    fields[schema.ANN_TRANSCRIPT] = FieldValue(clip.truth.transcript, 1.0, "truth")
    for name, value in clip.truth.labels.items():
        fields[name] = FieldValue(value, 1.0, "truth", heard.fields[name].measure)
    return Annotation(clip.key, fields)


def _plant(labels: list[Annotation], share: float, rng: np.random.Generator) -> list[str]:
    """Plant wrong labels in place; returns the kind per clip ("" = correct)."""
    n = len(labels)
    order = rng.permutation(n)
    k = int(round(share * n))
    kinds = [""] * n
    for i in order[:k]:
        others = [j for j in range(n) if labels[j].value(schema.ANN_TRANSCRIPT) != labels[i].value(schema.ANN_TRANSCRIPT)]
        labels[i] = labels[i].replace(schema.ANN_TRANSCRIPT, labels[int(rng.choice(others))].value(schema.ANN_TRANSCRIPT))
        kinds[i] = "transcript_swap"
    for pos, i in enumerate(order[k:2 * k]):
        if pos % 2 == 0:
            gender = labels[i].value(schema.ANN_GENDER)
            labels[i] = labels[i].replace(schema.ANN_GENDER, "male" if gender == "female" else "female")
            kinds[i] = "gender_flip"
        else:
            bands = [b for b in ("lt10", "10to20", "20to30", "ge30") if b != labels[i].value(schema.ANN_SNR_BAND)]
            labels[i] = labels[i].replace(schema.ANN_SNR_BAND, str(rng.choice(bands)))
            kinds[i] = "snr_flip"
    return kinds


def part_a(args: argparse.Namespace) -> None:
    asr = str(real_whisper_dir("tiny.en"))
    train = seed.generated_set(args.seed_clips, 0)
    bare = RoundWorker(WorkerSpec(asr, "whisper-tiny.en", None, "", cpu_threads=args.threads))
    x = np.asarray(bare.features([c.audio for c in train]), np.float32)
    mean, std = training.standardisation(x)
    options = training.FitOptions()
    net = training.new_net(x.shape[1], options)
    training.fit(net, (x - mean) / std, encode_labels([c.truth.labels for c in train]), options)
    with tempfile.TemporaryDirectory() as heads_dir:
        AttributeHeads(net, mean, std).save(heads_dir)
        worker = RoundWorker(WorkerSpec(asr, "whisper-tiny.en", heads_dir, "bench-heads", cpu_threads=args.threads))
    thresholds = VerifyThresholds()
    if args.calibration_clips:
        # a third generated set (seed 2), disjoint from the training (0) and evaluation (1) sets and
        # without the real clips: thresholds are chosen here and only then measured on the eval set
        calibration = seed.generated_set(args.calibration_clips, 2)
        rows, kinds, _ = _verify_planted(worker, calibration, args, VerifyThresholds())
        thresholds = calibrate(rows, kinds, args.target_false_reject)
        print("calibrated on", len(calibration), "generated clips (seed 2):",
              {k: round(v, 3) for k, v in thresholds.model_dump().items() if k in CALIBRATED})
    evalset = seed.generated_set(args.eval_clips, args.eval_seed) + seed.real_set()
    rows, kinds, clock = _verify_planted(worker, evalset, args, thresholds)
    _print_part_a(evalset, kinds, rows, clock)


def _verify_planted(worker: RoundWorker, clips: list[seed.SeedClip], args: argparse.Namespace,
                    thresholds: VerifyThresholds) -> tuple[dict[int, dict], list[str], collections.Counter]:
    """Annotate ``clips``, replace known fields by the truth, plant wrong labels, re-synthesize and
    verify every label; (verify row per clip, planted kind per clip, seconds per phase)."""
    from audiomill.audio import decode_flac

    clock = collections.Counter()
    started = time.perf_counter()
    heard = [worker.model.describe(c.key, h) for c, h in zip(clips, worker.model.hear([c.audio for c in clips]))]
    clock["hear (annotate)"] += time.perf_counter() - started
    labels = [_truthful(c, h) for c, h in zip(clips, heard)]
    kinds = _plant(labels, args.plant_share, np.random.default_rng(args.seed))
    order = np.random.default_rng(args.seed + 1).permutation(len(labels))  # mix kinds inside batches
    rows = {}
    for first in range(0, len(order), BATCH):
        idx = [int(i) for i in order[first:first + BATCH]]
        started = time.perf_counter()
        synth = worker.resynthesize([labels[i] for i in idx])
        clock["resynthesize"] += time.perf_counter() - started
        started = time.perf_counter()
        out = worker.verify([labels[i] for i in idx], [clips[i].audio for i in idx],
                            [decode_flac(s["resynth_flac"]) for s in synth], thresholds)
        clock["verify"] += time.perf_counter() - started
        rows.update({i: r for i, r in zip(idx, out)})
    return rows, kinds, clock


def _gender_gap(row: dict) -> float | None:
    a, b = row[schema.VER_GENDER_P_ORIG], row[schema.VER_GENDER_P_SYNTH]
    return abs(a - b) if a is not None and b is not None else None


CALIBRATED = {  # threshold -> (score of a verify row, "max": reject above, "min": reject below)
    "content_max_state_dist": (lambda r: r[schema.VER_CONTENT_STATE_DIST], "max"),
    "pitch_max_diff_st": (lambda r: r[schema.VER_PITCH_DIFF_ST], "max"),
    "gender_max_gap": (_gender_gap, "max"),
    "gender_min_p_synth": (lambda r: r[schema.VER_GENDER_P_SYNTH], "min"),
    "roundtrip_min_agree": (lambda r: r[schema.VER_ROUNDTRIP_AGREE], "min"),
    "roundtrip_max_wer": (lambda r: r[schema.VER_ROUNDTRIP_WER], "max"),
}
"""The thresholds set from data; the others keep their physical defaults (SNR dB, decay, rate)."""


def calibrate(rows: dict[int, dict], kinds: list[str], target: float) -> VerifyThresholds:
    """Loosen each calibrated threshold only as far as the ``target`` quantile of the scores of
    CORRECT labels needs (never tighter than the default): a check then wrongly rejects at most
    about ``target`` of correct labels on its own, and planted errors still fail the others."""
    values = VerifyThresholds().model_dump()
    for name, (score, side) in CALIBRATED.items():
        found = [score(rows[i]) for i, kind in enumerate(kinds) if not kind]
        found = [v for v in found if v is not None]
        if not found:
            continue
        if side == "max":
            values[name] = max(values[name], float(np.quantile(found, 1 - target)))
        else:
            values[name] = min(values[name], float(np.quantile(found, target)))
    return VerifyThresholds(**values)


def _print_part_a(evalset, kinds, rows, clock) -> None:  # noqa: ANN001
    def share(sel, decision):  # noqa: ANN001, ANN202
        chosen = [i for i in range(len(evalset)) if sel(i)]
        hits = sum(rows[i][schema.VER_DECISION] == decision for i in chosen)
        return f"{hits}/{len(chosen)} = {hits / max(len(chosen), 1):.0%}"
    print(f"clips: {len(evalset)} ({sum(c.origin == 'real' for c in evalset)} real)")
    print("planted errors caught (goal >= 80%):", share(lambda i: kinds[i] != "", "reject"))
    for kind in ("transcript_swap", "gender_flip", "snr_flip"):
        print(f"  {kind:16s}", share(lambda i, k=kind: kinds[i] == k, "reject"))
    print("correct labels wrongly rejected (goal <= 10%):", share(lambda i: kinds[i] == "", "reject"))
    for origin in ("generated", "real"):
        print(f"  {origin:10s} caught", share(lambda i, o=origin: kinds[i] and evalset[i].origin == o, "reject"),
              " false reject", share(lambda i, o=origin: not kinds[i] and evalset[i].origin == o, "reject"))
    reasons = collections.Counter(code for i in range(len(evalset)) if not kinds[i]
                                  for code in rows[i][schema.VER_REASONS].split(",") if code)
    print("reasons on correct labels:", dict(reasons))
    for i in range(len(evalset)):
        if not kinds[i] and rows[i][schema.VER_DECISION] == "reject":
            print(f"  wrongly rejected {evalset[i].origin} {evalset[i].key}: {rows[i][schema.VER_REASONS]}",
                  {name: round(v, 3) for name, (score, _) in CALIBRATED.items() if (v := score(rows[i])) is not None})
    checks = (schema.VER_CONTENT_OK, schema.VER_SPEAKER_OK, schema.VER_SCENE_OK, schema.VER_ROUNDTRIP_OK)
    print("without one check (caught planted / wrongly rejected correct):")
    for left_out in checks:
        kept = [c for c in checks if c != left_out]
        rejected = [not all(rows[i][c] for c in kept) for i in range(len(evalset))]
        caught = sum(r for r, k in zip(rejected, kinds) if k)
        false = sum(r for r, k in zip(rejected, kinds) if not k)
        print(f"  without {left_out:18s} {caught}/{sum(map(bool, kinds))}  {false}/{kinds.count('')}")
    for name, seconds in clock.items():
        print(f"seconds per clip, {name}: {seconds / len(evalset):.2f}")


def part_b(args: argparse.Namespace) -> None:
    from audiomill.jobs.rounds.run import run_rounds
    from audiomill.rounds.config import RoundConfig
    from audiomill.testing.rounds import make_round_dataset
    from audiomill.testing.tokenizers import codebook_tokenizer

    root = Path(args.work or tempfile.mkdtemp(prefix="bench-rounds-"))
    # the pool is generated only: the real alsa clips are in the held-out set, never in training
    texts = seed.SENTENCES
    if args.pool_texts == "docstrings":  # new text every clip: phone contexts the seed set never has
        from audiomill.testing.texts import docstring_sentences

        texts = docstring_sentences()[:args.dataset_clips * 4]
    dataset, _ = make_round_dataset(root, args.dataset_clips, real=args.real_in_pool, texts=texts)
    tokenizer = args.tokenizer
    if not tokenizer:  # a codebook over clips of another seed; token agreement needs no decoder
        tokenizer = str(codebook_tokenizer(root / "tokenizer", [c.audio for c in seed.generated_set(40, 99)],
                                           args.codebook))
    cfg = RoundConfig(registry=str(root / "registry"), seed_clips=args.seed_clips, eval_clips=args.eval_clips,
                      budget_hours=args.budget_hours, num_cpus=2, tokenizer=tokenizer,
                      generator={"steps": args.generator_steps})
    started = time.perf_counter()
    run_rounds(str(dataset), cfg, args.rounds,
               on_phase=lambda n, p, s: print(f"round {n} {p}: {s.get('wall_s', 0):.1f} s", flush=True))
    print(f"{args.rounds} rounds (+ bootstrap) in {time.perf_counter() - started:.0f} s")
    print_round_table(str(dataset), args.rounds)
    print("embedded generator (espeak/Piper from the TRUE label) vs the same held-out originals:",
          _f(embedded_agreement(str(dataset), cfg, tokenizer)))


def print_round_table(dataset: str, rounds: int) -> None:
    from audiomill.rounds.store import RoundStore

    print("round | heads parent/candidate acc (real) | promoted | generator parent/candidate agreement (real) "
          "| promoted | verified | accepted | gen rows | s/clip annotate, resynth, verify; train s")
    for number in range(0, rounds + 1):
        store = RoundStore(dataset, number)
        reg, ver, ev = (store.marker(p) or {} for p in ("register", "verify", "evaluate"))
        tr = store.marker("train") or {}
        gen_ev, gen_reg = ev.get("generator", {}), reg.get("generator", {})
        n = max(ver.get("verified", 0), 1)
        marks = {p: store.marker(p) or {} for p in ("annotate", "resynthesize", "verify")}
        print(number, "|", _f(reg.get("parent_eval_acc")), "/", _f(reg.get("candidate_eval_acc")),
              f"({_f(ev.get('candidate', {}).get('real_mean'))})", "|", reg.get("promoted"), "|",
              _f(gen_ev.get("parent", {}).get("mean")), "/", _f(gen_ev.get("candidate", {}).get("mean")),
              f"({_f(gen_ev.get('candidate', {}).get('real_mean'))})", "|", gen_reg.get("promoted"), "|",
              ver.get("verified", "-"), "|", ver.get("accepted", "-"), "|", tr.get("generator", {}).get("rows", "-"),
              "|", ", ".join(f"{marks[p].get('wall_s', 0) / n:.1f}" for p in marks), f"; {tr.get('wall_s', 0):.0f}")


def embedded_agreement(dataset: str, cfg, tokenizer: str) -> float:  # noqa: ANN001
    """Token agreement of the embedded generator's speech of each held-out clip's TRUE label with
    that clip's original: what the trained generator is measured against."""
    from audiomill.jobs.rounds.models import Pinned
    from audiomill.jobs.rounds.seedset import seed_tables
    from audiomill.jobs.rounds.tasks import TRUTH_TRANSCRIPT
    from audiomill.models.generation.model import Generator
    from audiomill.models.generation.token_training import agreement
    from audiomill.models.tokenizer import SemanticTokenizer
    from audiomill.rounds.store import ROUND_JSON, RoundStore, read_json

    pinned = Pinned(**read_json(RoundStore(dataset, 0).uri(ROUND_JSON))["models"])
    spec = WorkerSpec(pinned.asr_dir, pinned.asr_id, None, "", tokenizer=pinned.tokenizer, registry=cfg.registry)
    _, held_out = seed_tables(dataset, cfg, spec, None)
    tok = SemanticTokenizer.load(tokenizer)
    generator = Generator(cfg.engine, seed.babble_voices())
    values = []
    for row in held_out.to_pylist():
        fields = {schema.ANN_TRANSCRIPT: FieldValue(row[TRUTH_TRANSCRIPT], 1.0, "truth"),
                  schema.ANN_LANGUAGE: FieldValue("en", 1.0, "truth")}
        fields.update({f: FieldValue(row[f], 1.0, "truth") for f in schema.ANNOTATION_FIELDS[2:] if row.get(f)})
        speech = generator.synthesize(Annotation(row[schema.KEY], fields)).audio
        values.append(agreement(tok.encode(speech), np.asarray(row[schema.TOK_TOKENS])))
    return float(np.mean(values))


def _f(value) -> str:  # noqa: ANN001
    return f"{value:.3f}" if isinstance(value, float) and value == value else "-"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed-clips", type=int, default=32)
    parser.add_argument("--eval-clips", type=int, default=16)
    parser.add_argument("--plant-share", type=float, default=0.2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--eval-seed", type=int, default=1, help="seed of the generated evaluation clips")
    parser.add_argument("--calibration-clips", type=int, default=0,
                        help="choose the data-set thresholds on this many generated clips (seed 2) first")
    parser.add_argument("--target-false-reject", type=float, default=0.05,
                        help="share of correct calibration labels each calibrated check may reject")
    parser.add_argument("--rounds", type=int, default=0, help="also run N real rounds (part B)")
    parser.add_argument("--dataset-clips", type=int, default=16)
    parser.add_argument("--budget-hours", type=float, default=1.0)
    parser.add_argument("--real-in-pool", action="store_true", help="also put the real alsa clips in the pool "
                        "(they are held-out clips too, so accuracy on them is then not a transfer measure)")
    parser.add_argument("--tokenizer", default="", help="tokenizer dir/ref (default: a codebook over 40 clips)")
    parser.add_argument("--codebook", type=int, default=128)
    parser.add_argument("--pool-texts", choices=("standard", "docstrings"), default="standard",
                        help="what the pool's clips say: the 16 seed sentences, or stdlib docstring sentences")
    parser.add_argument("--generator-steps", type=int, default=400)
    parser.add_argument("--work", default="", help="part B's directory (default: a new temp dir)")
    parser.add_argument("--skip-a", action="store_true", help="run part B only")
    args = parser.parse_args()
    if not args.skip_a:
        part_a(args)
    if args.rounds:
        part_b(args)


if __name__ == "__main__":
    main()
