"""CPU benchmark of ``audiomill clean`` against the scripts a user would write instead, side by side.

One run builds (or reuses) the corpora of ``bench_corpora.py`` (``long``: >= ``--hours`` of
2-10 min FLAC files of non-repeating speech, noise and music; ``short``: ~570 short real
recordings (Debian's asterisk prompts + music on hold) in six codec/rate mixes), then, each in a
fresh subprocess, per corpus:

1. ``python -m audiomill clean CORPUS --out OUT --cpus N --json`` (local Ray with N CPUs, default 2),
   timed from process start to exit, so interpreter start, Ray start and shutdown count; and the
   same with ``runner.kind=processes`` (N worker processes, no Ray; same output bytes; what the
   default ``auto`` picks on one machine without GPU stages);
2. ``baselines.py pool``: ``multiprocessing.Pool(2)`` of PyAV decode -> stock silero-vad ONNX
   ``get_speech_timestamps`` -> soundfile FLAC -> one tar (the target is audiomill >= 2x it);
3. with ``--naive``, the same steps in one process.

Plus ``audiomill clean`` of a single 2 s file: the fixed overhead on Ray, and the small-job fast
path (``runner.kind=auto``, the default, runs a one-part job in process). Runs are repeated ``--repeat``
times (default 2), interleaved, and the fastest of each is kept: on a machine shared with other
work, the least disturbed try is the best estimate. ``--big-hours H`` adds one run each of
audiomill (Ray), the processes runner and the pool on an H-hour long corpus: the peak-memory
comparison, and the speed ratios at a scale where fixed costs no longer dominate.

Peak memory is the largest sum, over the process tree (the subprocess and every descendant:
Ray's GCS, raylet, workers, agents; the pool's workers), of RSS sampled every 0.2 s; the sum of
PSS is recorded beside it. Targets are printed as "meets target" / "below target" text; nothing
is asserted. Results go to ``WORKDIR/results/clean_cpu-<timestamp>.json``.

Usage: python benchmarks/clean_cpu.py [--hours 1] [--corpora long,short] [--naive] [--big-hours 0]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil

GIB = 1024**3
SAMPLE_EVERY_S = 0.2
TARGET_RATIO = 2.0  # audiomill x realtime / multiprocessing.Pool(2) x realtime, same corpus
TARGET_XRT_PER_CORE = 250.0
TARGET_OVERHEAD_S = 5.0
TARGET_PEAK_GIB = 4.0
FLAT_RATIO_MAX = 1.2  # big-corpus peak / small-corpus peak still counted as "flat" (issue 12: +-20%)


# ----------------------------------------------------------------------------- measuring


@dataclass
class TreeSample:
    """What one sweep over a process tree found: summed RSS and PSS (bytes), per-process RSS."""

    rss_bytes: int
    pss_bytes: int
    by_process: dict[str, int]


class TreeSampler:
    """Samples a process tree: peak summed RSS and PSS, and CPU seconds its processes used.

    CPU seconds are the last reading of each process (user + system), so a process that exits
    between two samples loses at most 0.2 s of its time.
    """

    def __init__(self, root_pid: int) -> None:
        self.root = psutil.Process(root_pid)
        self.peak: TreeSample = TreeSample(0, 0, {})
        self.peak_pss_bytes = 0
        self.max_processes = 0
        self.samples = 0
        self._cpu_s: dict[tuple[int, float], float] = {}
        self._labels: dict[tuple[int, float], str] = {}
        self._own_peak: dict[tuple[int, float], int] = {}  # each process's own peak RSS

    def sample(self) -> None:
        try:
            tree = [self.root, *self.root.children(recursive=True)]
        except psutil.Error:  # the root has exited
            return
        current = TreeSample(0, 0, {})
        for proc in tree:
            try:
                with proc.oneshot():
                    info = proc.memory_full_info()
                    cpu = proc.cpu_times()
                    ident = (proc.pid, proc.create_time())
                    label = f"{proc.pid}:{_process_label(proc)}"
                    if ident not in self._labels or "ray::IDLE" not in label:  # keep a worker's last job title
                        self._labels[ident] = label
                    self._cpu_s[ident] = cpu.user + cpu.system
            except psutil.Error:  # exited between listing and reading, or a zombie
                continue
            self._own_peak[ident] = max(self._own_peak.get(ident, 0), info.rss)
            current.rss_bytes += info.rss
            current.pss_bytes += getattr(info, "pss", info.rss)
            current.by_process[label] = info.rss
        if current.rss_bytes > self.peak.rss_bytes:
            self.peak = current
        self.peak_pss_bytes = max(self.peak_pss_bytes, current.pss_bytes)
        self.max_processes = max(self.max_processes, len(tree))
        self.samples += 1

    def report(self) -> dict[str, Any]:
        top = sorted(self.peak.by_process.items(), key=lambda item: -item[1])[:8]
        cpu_top = sorted(((self._labels[i], s) for i, s in self._cpu_s.items()), key=lambda item: -item[1])[:8]
        own = sorted(((self._labels[i], b) for i, b in self._own_peak.items()), key=lambda item: -item[1])[:8]
        return {"cpu_top_processes_s": {name: round(seconds, 2) for name, seconds in cpu_top},
                "own_peak_rss_top_processes": {name: rss for name, rss in own},
                "peak_rss_bytes": self.peak.rss_bytes, "peak_pss_bytes": self.peak_pss_bytes,
                "peak_rss_top_processes": {name: rss for name, rss in top},
                "max_processes": self.max_processes, "samples": self.samples,
                "tree_cpu_s": sum(self._cpu_s.values())}


def _process_label(proc: psutil.Process) -> str:
    """Short name of a process: Ray sets worker titles like ``ray::MapWorker(...)``."""
    cmdline = proc.cmdline()
    first = cmdline[0] if cmdline else proc.name()
    if first.startswith("ray::"):
        return first[:60]
    if len(cmdline) > 1 and "python" in Path(first).name:
        return " ".join(Path(part).name for part in cmdline[1:3])[:60]
    return Path(first).name[:60]


def _busy_cpu_s() -> float:
    """System-wide busy CPU seconds since boot (all cores)."""
    times = psutil.cpu_times()
    return sum(times) - times.idle - getattr(times, "iowait", 0.0)


def run_measured(cmd: list[str], log_path: Path, timeout_s: float, cwd: Path) -> dict[str, Any]:
    """Run ``cmd``; return wall seconds (start to exit), exit code, stdout, tree memory and CPU.

    It runs in ``cwd`` (the workdir), not the repository, so that ``python -m audiomill`` imports
    the installed package or the one on ``PYTHONPATH`` rather than whatever the current directory
    holds. ``other_cpu_s`` is busy CPU time of the whole machine during the run that the measured tree
    did not use (this script's sampler, other users' jobs): a large value means a noisy result.
    """
    done = threading.Event()
    env = dict(os.environ, RAY_DEDUP_LOGS="0", PYTHONUNBUFFERED="1")
    busy_before, load_before = _busy_cpu_s(), os.getloadavg()[0]
    started = time.perf_counter()
    with open(log_path, "w") as stderr:
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=stderr, text=True, env=env, cwd=cwd)
        sampler = TreeSampler(proc.pid)

        def sample_until_done() -> None:
            while not done.is_set():
                sampler.sample()
                done.wait(SAMPLE_EVERY_S)

        thread = threading.Thread(target=sample_until_done, daemon=True)
        thread.start()
        try:
            stdout, _ = proc.communicate(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            proc.kill()
            stdout, _ = proc.communicate()
        wall_s = time.perf_counter() - started
        done.set()
        thread.join()
    measured = sampler.report()
    measured["other_cpu_s"] = _busy_cpu_s() - busy_before - measured["tree_cpu_s"]
    measured["loadavg_1min_before"] = load_before
    return {"cmd": cmd, "returncode": proc.returncode, "wall_s": wall_s, "stdout": stdout,
            "stderr_log": str(log_path), "measured": measured}


def json_tail(stdout: str) -> dict[str, Any]:
    """The JSON object a subprocess printed last (it may print other lines before it)."""
    start = stdout.find("{")
    if start < 0:
        raise ValueError(f"no JSON in output: {stdout[-500:]!r}")
    return json.loads(stdout[start:])


class RunFailed(RuntimeError):
    """A measured subprocess exited non-zero; the message holds the end of its stderr."""


def _check(result: dict[str, Any], what: str) -> None:
    if result["returncode"] == 0:
        return
    lines = Path(result["stderr_log"]).read_text(errors="replace").strip().splitlines()
    tail = "\n".join("    " + line[:300] for line in lines[-5:])
    raise RunFailed(f"{what} exited {result['returncode']} (full log {result['stderr_log']}):\n{tail}")


def run_audiomill(corpus: Path, out: Path, cpus: int, sets: list[str], logs: Path,
                  timeout_s: float) -> dict[str, Any]:
    shutil.rmtree(out, ignore_errors=True)  # a leftover dataset would be resumed, not redone
    cmd = [sys.executable, "-m", "audiomill", "clean", str(corpus), "--out", str(out),
           "--cpus", str(cpus), "--json", "--set", "runner.kind=ray"]
    for assignment in sets:
        cmd += ["--set", assignment]
    result = run_measured(cmd, logs / f"audiomill-{out.name}.stderr.log", timeout_s, out.parent)
    _check(result, "audiomill clean")
    manifest = json_tail(result.pop("stdout"))
    result["manifest"] = {key: manifest.get(key) for key in ("wall_s", "stages", "counts", "hours_in",
                                                              "hours_out", "accounting", "versions")}
    result["rejects"], result["shards"] = _dataset_summary(out)
    result["compacted"] = _compacted(out)
    return result


def _compacted(out: Path) -> dict[str, Any]:
    """Shard count and sizes after ``audiomill compact`` (default 256 MiB packs), and its wall time."""
    from audiomill.jobs.compact import compact_dataset

    target = out.with_name(out.name + "-compacted")
    shutil.rmtree(target, ignore_errors=True)
    started = time.perf_counter()
    compact_dataset(str(out), str(target), progress=lambda _: None)
    return _dataset_summary(target)[1] | {"wall_s": round(time.perf_counter() - started, 2)}


def _dataset_summary(out: Path) -> tuple[dict[str, int], dict[str, Any]]:
    """Rejects by reason, and shard count and size distribution (MiB) of a finished dataset."""
    from collections import Counter

    import pyarrow.parquet as pq

    rejects = out / "rejects.parquet"
    reasons = Counter(pq.read_table(rejects, columns=["reject_reason"])["reject_reason"].to_pylist()) \
        if rejects.is_file() else Counter()
    sizes = sorted(p.stat().st_size / 2**20 for p in (out / "shards").glob("*.tar"))
    shards = {"count": len(sizes)}
    if sizes:
        shards.update(min_mib=round(sizes[0], 2), median_mib=round(sizes[len(sizes) // 2], 2),
                      max_mib=round(sizes[-1], 2))
    return dict(reasons.most_common()), shards


def run_baseline(mode: str, corpus: Path, out_tar: Path, logs: Path, timeout_s: float) -> dict[str, Any]:
    """``baselines.py`` (``naive``: one process; ``pool``: multiprocessing.Pool(2)) on ``corpus``."""
    cmd = [sys.executable, str(Path(__file__).with_name("baselines.py")), mode, str(corpus), str(out_tar)]
    result = run_measured(cmd, logs / f"{out_tar.stem}.stderr.log", timeout_s, out_tar.parent)
    _check(result, f"{mode} script")
    result["baseline"] = json_tail(result.pop("stdout"))
    return result


# ----------------------------------------------------------------------------- report


def _verdict(ok: bool) -> str:
    return "meets target" if ok else "below target"


def summarize(audio_s: float, result: dict[str, Any], cores: int) -> dict[str, Any]:
    xrt = audio_s / result["wall_s"]
    return {"audio_hours": audio_s / 3600, "wall_s": result["wall_s"], "x_realtime": xrt,
            "cores": cores, "x_realtime_per_core": xrt / cores,
            "peak_rss_gib": result["measured"]["peak_rss_bytes"] / GIB,
            "peak_pss_gib": result["measured"]["peak_pss_bytes"] / GIB,
            "own_peak_rss_top_processes": result["measured"]["own_peak_rss_top_processes"],
            "tree_cpu_s": result["measured"]["tree_cpu_s"],
            "x_realtime_per_cpu_s": audio_s / max(result["measured"]["tree_cpu_s"], 1e-9),
            "other_cpu_s": result["measured"]["other_cpu_s"]}


def print_table(rows: dict[str, dict[str, Any]]) -> None:
    header = f"{'run':<16}{'audio h':>9}{'wall s':>9}{'x RT':>9}{'cores':>7}{'x RT/core':>11}" \
             f"{'peak RSS GiB':>14}{'peak PSS GiB':>14}{'CPU s':>8}{'xRT/CPU-s':>11}{'other CPU s':>13}"
    print("\n" + header + "\n" + "-" * len(header))
    for name, r in rows.items():
        print(f"{name:<16}{r['audio_hours']:>9.3f}{r['wall_s']:>9.1f}{r['x_realtime']:>9.1f}{r['cores']:>7}"
              f"{r['x_realtime_per_core']:>11.1f}{r['peak_rss_gib']:>14.2f}{r['peak_pss_gib']:>14.2f}"
              f"{r['tree_cpu_s']:>8.1f}{r['x_realtime_per_cpu_s']:>11.1f}{r['other_cpu_s']:>13.1f}")
    print("CPU s: user+system seconds of the measured process tree; xRT/CPU-s: audio seconds per CPU "
          "second (less sensitive to a busy machine than wall time); other CPU s: the rest of the machine's "
          "busy time during the run (this script's sampler, other jobs) - large means noisy")


def print_verdicts(rows: dict[str, dict[str, Any]], corpora: list[str]) -> dict[str, Any]:
    verdicts: dict[str, Any] = {}
    overhead = rows.get("audiomill_tiny", {}).get("wall_s")
    if overhead is not None:
        verdicts["fixed_overhead_s"] = overhead
        print(f"\nfixed overhead (interpreter + imports + Ray start + shutdown; audiomill clean of one "
              f"{rows['audiomill_tiny']['audio_hours'] * 3600:.0f} s file): {overhead:.1f} s "
              f"(target <= {TARGET_OVERHEAD_S:.0f}): {_verdict(overhead <= TARGET_OVERHEAD_S)}")
    fast = rows.get("fastpath_tiny", {}).get("wall_s")
    if fast is not None:
        verdicts["fast_path_s"] = fast
        print(f"small-job fast path (runner.kind=auto runs a one-part job in process, same bytes): {fast:.1f} s "
              f"(target <= {TARGET_OVERHEAD_S:.0f}): {_verdict(fast <= TARGET_OVERHEAD_S)}")
    for corpus in corpora:
        mill, pool, naive = (rows.get(f"{kind}_{corpus}") for kind in ("audiomill", "pool", "naive"))
        if mill and pool:
            ratio = mill["x_realtime"] / pool["x_realtime"]
            verdicts[f"{corpus}_audiomill_vs_pool"] = ratio
            print(f"{corpus}: audiomill / Pool(2) x RT: {ratio:.2f} (target >= {TARGET_RATIO}): "
                  f"{_verdict(ratio >= TARGET_RATIO)}; by CPU seconds: "
                  f"{mill['x_realtime_per_cpu_s'] / pool['x_realtime_per_cpu_s']:.2f}")
        procs = rows.get(f"processes_{corpus}")
        if procs and pool:
            verdicts[f"{corpus}_processes_vs_pool"] = procs["x_realtime"] / pool["x_realtime"]
            print(f"{corpus}: audiomill --runner processes (what the default auto picks) / Pool(2) x RT: "
                  f"{verdicts[f'{corpus}_processes_vs_pool']:.2f} (target >= {TARGET_RATIO}): "
                  f"{_verdict(verdicts[f'{corpus}_processes_vs_pool'] >= TARGET_RATIO)}; by CPU seconds: "
                  f"{procs['x_realtime_per_cpu_s'] / pool['x_realtime_per_cpu_s']:.2f}")
        if mill and naive:
            verdicts[f"{corpus}_audiomill_vs_naive"] = mill["x_realtime"] / naive["x_realtime"]
            print(f"{corpus}: audiomill / naive (1 process) x RT: {verdicts[f'{corpus}_audiomill_vs_naive']:.2f}")
        if mill:
            per_core = mill["x_realtime_per_core"]
            verdicts[f"{corpus}_x_realtime_per_core"] = per_core
            line = f"{corpus}: audiomill x RT per core {per_core:.1f} (target >= {TARGET_XRT_PER_CORE:.0f}): " \
                   f"{_verdict(per_core >= TARGET_XRT_PER_CORE)}"
            if overhead is not None and mill["wall_s"] > overhead:
                steady = mill["audio_hours"] * 3600 / (mill["wall_s"] - overhead) / mill["cores"]
                verdicts[f"{corpus}_x_realtime_per_core_without_overhead"] = steady
                line += f"; without the fixed overhead {steady:.1f}"
            print(line)
        if procs:
            per_core = verdicts[f"{corpus}_processes_x_realtime_per_core"] = procs["x_realtime_per_core"]
            print(f"{corpus}: audiomill --runner processes x RT per core {per_core:.1f} "
                  f"(target >= {TARGET_XRT_PER_CORE:.0f}): {_verdict(per_core >= TARGET_XRT_PER_CORE)}")
    return verdicts


def _print_job_detail(runs: dict[str, dict[str, Any]]) -> None:
    for name, run in runs.items():
        if "error" in run:
            print(f"\n{name}: FAILED - {run['error']}")
            continue
        if "manifest" in run:
            m = run["manifest"]
            print(f"\n{name}: process wall {run['wall_s']:.1f} s (incl. interpreter + Ray start/stop; "
                  f"all tries {run['all_wall_s']}); job wall_s {m['wall_s']:.1f} s; "
                  f"parts {m['counts']['parts']}, segments {m['counts']['segments']}, "
                  f"hours out {m['hours_out']:.3f}; rejects {run['rejects']}; shards {run['shards']}; "
                  f"after `audiomill compact` {run['compacted']}")
            for stage, stats in m["stages"].items():
                if stage != "job":
                    print(f"  {stage:<10} worker_s {stats['worker_s']:>8.2f}   "
                          f"x RT per worker {stats['x_realtime_per_worker']}")
        else:
            n = run["baseline"]
            print(f"\n{name}: process wall {run['wall_s']:.1f} s (all tries {run['all_wall_s']}); files {n['files']}, "
                  f"errors {n['errors']}, segments {n['segments']}, hours out {n['hours_out']:.3f}")
            for stage, seconds in n["stage_seconds"].items():
                print(f"  {stage:<10} seconds {seconds:>8.2f} (summed over processes)")
        top = run["measured"]["peak_rss_top_processes"]
        print("  RSS at the peak sample (MiB): " + ", ".join(f"{k} {v / 2**20:.0f}" for k, v in top.items()))
        own = run["measured"]["own_peak_rss_top_processes"]
        print("  each process's own peak RSS (MiB): " + ", ".join(f"{k} {v / 2**20:.0f}" for k, v in own.items()))
        cpu = run["measured"]["cpu_top_processes_s"]
        print("  CPU seconds by process: " + ", ".join(f"{k} {v:.1f}" for k, v in cpu.items()))


def _print_memory(small: dict[str, Any], big: dict[str, Any]) -> dict[str, Any]:
    growth = big["peak_rss_gib"] / small["peak_rss_gib"]
    print(f"\npeak RSS (sum over process tree): {small['audio_hours']:.2f} h {small['peak_rss_gib']:.2f} GiB, "
          f"{big['audio_hours']:.2f} h {big['peak_rss_gib']:.2f} GiB, ratio {growth:.2f} "
          f"(target: flat, <= {FLAT_RATIO_MAX}): {_verdict(growth <= FLAT_RATIO_MAX)}; "
          f"under {TARGET_PEAK_GIB:.0f} GiB: {_verdict(big['peak_rss_gib'] < TARGET_PEAK_GIB)}")
    worker = {name: max(run["own_peak_rss_top_processes"].values(), default=0) for name, run in
              (("small", small), ("big", big))}
    print(f"largest single process's own peak RSS: {worker['small'] / 2**30:.2f} GiB at {small['audio_hours']:.2f} h, "
          f"{worker['big'] / 2**30:.2f} GiB at {big['audio_hours']:.2f} h, ratio {worker['big'] / max(worker['small'], 1):.2f}")
    return {"peak_rss_ratio_big_vs_long": growth,
            "largest_process_peak_ratio_big_vs_long": worker["big"] / max(worker["small"], 1)}


# ----------------------------------------------------------------------------- main


def measure_all(plan: list[tuple[str, int, Any]]) -> dict[str, dict[str, Any]]:
    """Run each (name, tries, measure) entry; entries with several tries are interleaved round by
    round (A B A B ...) so that load that comes and goes hits both alike. Each run keeps its try
    with the least wall time and records every wall time in ``all_wall_s``."""
    attempts: dict[str, list[dict[str, Any]]] = {name: [] for name, _, _ in plan}
    failed: dict[str, str] = {}
    for round_ in range(max(tries for _, tries, _ in plan)):
        for name, tries, measure in plan:
            if round_ >= tries or name in failed:
                continue
            print(f"running {name} ({round_ + 1}/{tries}) ...", flush=True)
            try:
                attempts[name].append(measure())
            except RunFailed as err:
                failed[name] = str(err)
    runs: dict[str, dict[str, Any]] = {}
    for name, tries, _ in plan:
        if name in failed:
            runs[name] = {"error": failed[name]}
            continue
        runs[name] = min(attempts[name], key=lambda run: run["wall_s"])
        runs[name]["all_wall_s"] = [round(run["wall_s"], 2) for run in attempts[name]]
    return runs


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--hours", type=float, default=1.0, help="audio hours of the long corpus")
    parser.add_argument("--corpora", default="long,short", help="which of long,short to run")
    parser.add_argument("--big-hours", type=float, default=0.0,
                        help="also run audiomill once on a long corpus of this many hours (memory); 0 skips")
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/audiomill-bench"),
                        help="corpora, outputs, logs and results JSON go here")
    parser.add_argument("--cpus", type=int, default=2, help="CPUs for audiomill's local Ray")
    parser.add_argument("--seed", type=int, default=0, help="corpus seed")
    parser.add_argument("--set", dest="sets", action="append", default=[],
                        help="extra audiomill --set override, e.g. ingest.part_size=4 (repeatable)")
    parser.add_argument("--repeat", type=int, default=2,
                        help="runs of audiomill and Pool(2) per corpus, interleaved; the fastest is kept")
    parser.add_argument("--naive", action="store_true", help="also run the 1-process naive script (once)")
    parser.add_argument("--timeout", type=float, default=1200.0, help="seconds allowed per subprocess")
    return parser.parse_args(argv)


def write_results(args: argparse.Namespace, started: str, rows: dict[str, Any], verdicts: dict[str, Any],
                  runs: dict[str, Any], corpora: dict[str, Any]) -> Path:
    import audiomill

    results = {"started": started, "host": {"machine": platform.machine(), "cpu_count": os.cpu_count(),
                                           "python": platform.python_version(),
                                           "loadavg_at_start": list(os.getloadavg())},
               "audiomill": {"version": audiomill.__version__, "path": os.path.dirname(audiomill.__file__)},
               "args": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
               "corpora": corpora, "rows": rows, "verdicts": verdicts, "runs": runs}
    out = args.workdir / "results" / f"clean_cpu-{started}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2, default=str))
    return out


def build_corpora(args: argparse.Namespace) -> dict[str, dict[str, Any]]:
    """name -> {dir, seconds, reused, origin} for the chosen corpora, plus ``tiny`` (overhead)."""
    from bench_corpora import ensure_long, ensure_short

    work, wanted = args.workdir, [c.strip() for c in args.corpora.split(",") if c.strip()]
    corpora: dict[str, dict[str, Any]] = {}
    for name in wanted:
        if name == "long":
            root, seconds, reused = ensure_long(work / f"corpus-long-{args.hours:g}h-seed{args.seed}", args.hours, args.seed)
            corpora[name] = {"dir": root, "seconds": seconds, "reused": reused, "origin": "generated"}
        elif name == "short":
            root, seconds, reused, origin = ensure_short(work / f"corpus-short-seed{args.seed}", args.seed)
            corpora[name] = {"dir": root, "seconds": seconds, "reused": reused, "origin": origin}
        else:
            raise SystemExit(f"unknown corpus {name!r}; choose from long,short")
    if args.big_hours > 0:
        root, seconds, reused = ensure_long(work / f"corpus-long-{args.big_hours:g}h-seed{args.seed}",
                                            args.big_hours, args.seed)
        corpora["big"] = {"dir": root, "seconds": seconds, "reused": reused, "origin": "generated"}
    corpora["tiny"] = _tiny_corpus(work / "corpus-tiny")
    for name, c in corpora.items():
        print(f"corpus {name}: {c['dir']} {c['seconds'] / 3600:.3f} h, {c['origin']} "
              f"({'reused' if c['reused'] else 'built'})", flush=True)
    return corpora


def _tiny_corpus(root: Path) -> dict[str, Any]:
    """One short speech clip (a file with no kept segment would fail the policy stage, so no tone)."""
    from audiomill.testing import signals

    path = root / "speech.wav"
    if not path.is_file():
        audio, sr = signals.espeak("The fixed cost of a job is measured on this one sentence.", "en-us")
        signals.write_audio(path, audio, sr)
    for stale in root.glob("tone.wav"):
        stale.unlink()
    audio, rate = signals.read_audio(path)
    seconds = audio.size / rate
    return {"dir": root, "seconds": seconds, "reused": True, "origin": "generated"}


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    work, started = args.workdir, time.strftime("%Y%m%d-%H%M%S")
    logs = work / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    corpora = build_corpora(args)

    def mill(name: str):  # noqa: ANN202 - a measuring thunk
        return lambda: run_audiomill(corpora[name]["dir"], work / f"out-{name}", args.cpus, args.sets, logs, args.timeout)

    def processes(name: str):  # noqa: ANN202
        return lambda: run_audiomill(corpora[name]["dir"], work / f"out-processes-{name}", args.cpus,
                                     [*args.sets, "runner.kind=processes"], logs, args.timeout)

    def base(mode: str, name: str):  # noqa: ANN202
        return lambda: run_baseline(mode, corpora[name]["dir"], work / f"{mode}-{name}.tar", logs, args.timeout)

    timed = [c for c in corpora if c in ("long", "short")]
    plan = [("audiomill_tiny", args.repeat, mill("tiny")),
            ("fastpath_tiny", args.repeat, lambda: run_audiomill(corpora["tiny"]["dir"], work / "out-fastpath",
                                                                 args.cpus, [*args.sets, "runner.kind=auto"], logs,
                                                                 args.timeout))]
    for name in timed:
        plan += [(f"audiomill_{name}", args.repeat, mill(name)), (f"processes_{name}", args.repeat, processes(name)),
                 (f"pool_{name}", args.repeat, base("pool", name))]
        if args.naive:
            plan.append((f"naive_{name}", 1, base("naive", name)))
    if "big" in corpora:  # once each: the memory comparison, and the speed ratios at that scale
        plan += [("audiomill_big", 1, mill("big")), ("processes_big", 1, processes("big")),
                 ("pool_big", 1, base("pool", "big"))]
    runs = measure_all(plan)
    cores = {"audiomill": args.cpus, "fastpath": args.cpus, "processes": args.cpus, "pool": 2, "naive": 1}
    rows = {name: summarize(corpora[name.split("_", 1)[1]]["seconds"], run, cores[name.split("_", 1)[0]])
            for name, run in runs.items() if "error" not in run}
    print(f"\nmachine load average at the end: {os.getloadavg()}")
    print_table(rows)
    verdicts = print_verdicts(rows, timed + [c for c in corpora if c == "big"])
    _print_job_detail(runs)
    if "audiomill_long" in rows and "audiomill_big" in rows:
        verdicts.update(_print_memory(rows["audiomill_long"], rows["audiomill_big"]))
    print(f"\nresults: {write_results(args, started, rows, verdicts, runs, corpora)}")
    if any("error" in run for run in runs.values()):
        sys.exit(1)


if __name__ == "__main__":
    main()
