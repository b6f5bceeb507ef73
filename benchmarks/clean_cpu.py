"""CPU benchmark of ``audiomill clean`` against a naive one-file-at-a-time script, side by side.

One run builds (or reuses) two generated corpora (``--hours``, default 1, and ``--big-hours``,
default 5), then, each in a fresh subprocess:

1. ``python -m audiomill clean CORPUS --out OUT --cpus N --json`` on the small corpus (local Ray
   with N CPUs, default 2), timed from process start to exit, so Ray start and shutdown count;
2. the naive script (``naive_clean`` below: PyAV decode + resample, stock silero-vad streaming
   ONNX model through ``get_speech_timestamps``, soundfile FLAC, ``tarfile``) on the same corpus,
   single-threaded;
3. ``audiomill clean`` on the big corpus, for the peak-memory comparison.

Runs 1 and 2 are repeated ``--repeat`` times (default 3), interleaved, and the fastest of each
is kept: on a machine shared with other work, the least disturbed try is the best estimate.

Peak memory is the largest sum, over the process tree (the subprocess and every descendant:
Ray's GCS, raylet, workers, agents), of RSS sampled every 0.2 s; the sum of PSS (shared pages
split between the processes that map them) is recorded beside it. Targets are printed as
"meets target" / "below target" text; nothing is asserted. Results go to
``WORKDIR/results/clean_cpu-<timestamp>.json``.

Usage: python benchmarks/clean_cpu.py [--hours 1] [--big-hours 5] [--workdir DIR] [--skip-big]
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
TARGET_RATIO = 1.8  # audiomill total x realtime / naive total x realtime
TARGET_XRT_PER_CORE = 200.0
TARGET_PEAK_GIB = 4.0
FLAT_RATIO_MAX = 1.25  # big-corpus peak / small-corpus peak still counted as "flat"
NAIVE_VAD = dict(threshold=0.5, min_speech_duration_ms=250, min_silence_duration_ms=300,
                 speech_pad_ms=100, max_speech_duration_s=30.0)  # audiomill's VadConfig defaults
NAIVE_MIN_SEGMENT_S = 1.0


# ----------------------------------------------------------------------------- corpus


def ensure_corpus(root: Path, hours: float, seed: int) -> tuple[Path, float, bool]:
    """Return (corpus dir, audio seconds, reused); rebuild unless the truth file matches."""
    from audiomill.testing.corpus import LONG_TRUTH_NAME, make_long_corpus

    truth_path = root / LONG_TRUTH_NAME
    if truth_path.is_file():
        truth = json.loads(truth_path.read_text())
        files_ok = all((root / f["path"]).is_file() for f in truth["files"])
        if truth.get("hours") == hours and truth.get("seed") == seed and files_ok:
            return root, sum(f["duration_s"] for f in truth["files"]), True
    shutil.rmtree(root, ignore_errors=True)
    make_long_corpus(root, hours, seed)
    truth = json.loads(truth_path.read_text())
    return root, sum(f["duration_s"] for f in truth["files"]), False


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
        return {"cpu_top_processes_s": {name: round(seconds, 2) for name, seconds in cpu_top},
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
    return result


def run_naive(corpus: Path, out_tar: Path, logs: Path, timeout_s: float) -> dict[str, Any]:
    cmd = [sys.executable, os.path.abspath(__file__), "--naive-worker", str(corpus), str(out_tar)]
    result = run_measured(cmd, logs / "naive.stderr.log", timeout_s, out_tar.parent)
    _check(result, "naive script")
    result["naive"] = json_tail(result.pop("stdout"))
    return result


# ----------------------------------------------------------------------------- naive baseline


def _naive_decode(path: Path):
    """PyAV decode + resample to 16 kHz mono float32, as a user copying audiomill's approach would."""
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


def _naive_add(tar, name: str, data: bytes) -> None:
    import io
    import tarfile

    info = tarfile.TarInfo(name)
    info.size = len(data)
    tar.addfile(info, io.BytesIO(data))


def naive_clean(corpus: Path, out_tar: Path) -> dict[str, Any]:
    """File by file, one process, one thread: decode, VAD, cut, FLAC-encode, append to one tar."""
    import io
    import tarfile

    import soundfile as sf
    import torch
    from silero_vad import get_speech_timestamps, load_silero_vad

    torch.set_num_threads(1)
    seconds = {"decode": 0.0, "vad": 0.0, "encode_tar": 0.0}
    audio_s = out_s = 0.0
    segments = 0
    model = load_silero_vad(onnx=True)
    paths = sorted(p for p in corpus.iterdir() if p.suffix in (".flac", ".wav"))
    with tarfile.open(out_tar, "w") as tar:
        for path in paths:
            t0 = time.perf_counter()
            audio = _naive_decode(path)
            t1 = time.perf_counter()
            spans = get_speech_timestamps(torch.from_numpy(audio), model, sampling_rate=16000, **NAIVE_VAD)
            t2 = time.perf_counter()
            for span in spans:
                piece = audio[span["start"]:span["end"]]
                if piece.size < NAIVE_MIN_SEGMENT_S * 16000:
                    continue
                buffer = io.BytesIO()
                sf.write(buffer, piece, 16000, format="FLAC", subtype="PCM_16")
                key = f"{path.stem}-{span['start']:010d}"
                _naive_add(tar, f"{key}.flac", buffer.getvalue())
                _naive_add(tar, f"{key}.json", json.dumps(
                    {"source": path.name, "start_s": span["start"] / 16000, "end_s": span["end"] / 16000}).encode())
                segments += 1
                out_s += piece.size / 16000
            t3 = time.perf_counter()
            for name, elapsed in (("decode", t1 - t0), ("vad", t2 - t1), ("encode_tar", t3 - t2)):
                seconds[name] += elapsed
            audio_s += audio.size / 16000
    return {"files": len(paths), "segments": segments, "hours_in": audio_s / 3600,
            "hours_out": out_s / 3600, "stage_seconds": seconds}


# ----------------------------------------------------------------------------- report


def _verdict(ok: bool) -> str:
    return "meets target" if ok else "below target"


def summarize(audio_s: float, result: dict[str, Any], cores: int) -> dict[str, Any]:
    xrt = audio_s / result["wall_s"]
    return {"audio_hours": audio_s / 3600, "wall_s": result["wall_s"], "x_realtime": xrt,
            "cores": cores, "x_realtime_per_core": xrt / cores,
            "peak_rss_gib": result["measured"]["peak_rss_bytes"] / GIB,
            "peak_pss_gib": result["measured"]["peak_pss_bytes"] / GIB,
            "tree_cpu_s": result["measured"]["tree_cpu_s"],
            "x_realtime_per_cpu_s": audio_s / max(result["measured"]["tree_cpu_s"], 1e-9),
            "other_cpu_s": result["measured"]["other_cpu_s"]}


def print_report(rows: dict[str, dict[str, Any]], runs: dict[str, dict[str, Any]]) -> dict[str, Any]:
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
    verdicts: dict[str, Any] = {}
    small, naive = rows.get("audiomill_small"), rows.get("naive_small")
    if small and naive:
        ratio = small["x_realtime"] / naive["x_realtime"]
        verdicts["ratio_audiomill_vs_naive"] = ratio
        print(f"\naudiomill x RT / naive x RT (same corpus, same run): {ratio:.2f}  "
              f"(target >= {TARGET_RATIO}): {_verdict(ratio >= TARGET_RATIO)}")
    if small:
        per_core = small["x_realtime_per_core"]
        verdicts["audiomill_x_realtime_per_core"] = per_core
        print(f"audiomill x RT per core: {per_core:.1f}  (target >= {TARGET_XRT_PER_CORE:.0f}): "
              f"{_verdict(per_core >= TARGET_XRT_PER_CORE)}")
    _print_job_detail(runs)
    if small and "audiomill_big" in rows:
        verdicts.update(_print_memory(small, rows["audiomill_big"]))
    return verdicts


def _print_job_detail(runs: dict[str, dict[str, Any]]) -> None:
    for name, run in runs.items():
        if "error" in run:
            print(f"\n{name}: FAILED - {run['error']}")
            continue
        if "manifest" in run:
            m = run["manifest"]
            job = m["stages"]["job"]
            print(f"\n{name}: process wall {run['wall_s']:.1f} s (incl. interpreter + Ray start/stop; "
                  f"all tries {run['all_wall_s']}); "
                  f"job wall_s {m['wall_s']:.1f} s ({job['x_realtime']} x RT); "
                  f"parts {m['counts']['parts']}, segments {m['counts']['segments']}, "
                  f"hours out {m['hours_out']:.3f}")
            for stage, stats in m["stages"].items():
                if stage != "job":
                    print(f"  {stage:<10} worker_s {stats['worker_s']:>8.2f}   "
                          f"x RT per worker {stats['x_realtime_per_worker']}")
        else:
            n = run["naive"]
            print(f"\n{name}: process wall {run['wall_s']:.1f} s (all tries {run['all_wall_s']}); files {n['files']}, "
                  f"segments {n['segments']}, hours out {n['hours_out']:.3f}")
            for stage, seconds in n["stage_seconds"].items():
                print(f"  {stage:<10} seconds {seconds:>8.2f}")
        top = run["measured"]["peak_rss_top_processes"]
        print("  RSS at the peak sample (MiB): " + ", ".join(f"{k} {v / 2**20:.0f}" for k, v in top.items()))
        cpu = run["measured"]["cpu_top_processes_s"]
        print("  CPU seconds by process: " + ", ".join(f"{k} {v:.1f}" for k, v in cpu.items()))


def _print_memory(small: dict[str, Any], big: dict[str, Any]) -> dict[str, Any]:
    growth = big["peak_rss_gib"] / small["peak_rss_gib"]
    growth_pss = big["peak_pss_gib"] / small["peak_pss_gib"]
    print(f"\npeak RSS (sum over process tree): {small['audio_hours']:.2f} h {small['peak_rss_gib']:.2f} GiB, "
          f"{big['audio_hours']:.2f} h {big['peak_rss_gib']:.2f} GiB, ratio {growth:.2f} "
          f"(target: flat, <= {FLAT_RATIO_MAX}): {_verdict(growth <= FLAT_RATIO_MAX)}; "
          f"under {TARGET_PEAK_GIB:.0f} GiB: {_verdict(big['peak_rss_gib'] < TARGET_PEAK_GIB)}")
    print(f"peak PSS (shared pages counted once): {small['peak_pss_gib']:.2f} GiB vs "
          f"{big['peak_pss_gib']:.2f} GiB, ratio {growth_pss:.2f}")
    return {"peak_rss_ratio_big_vs_small": growth, "peak_pss_ratio_big_vs_small": growth_pss}


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
    parser.add_argument("--hours", type=float, default=1.0, help="audio hours of the timing corpus")
    parser.add_argument("--big-hours", type=float, default=5.0, help="audio hours of the memory corpus")
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/audiomill-bench"),
                        help="corpora, outputs, logs and results JSON go here")
    parser.add_argument("--skip-big", action="store_true", help="skip the big-corpus memory run")
    parser.add_argument("--cpus", type=int, default=2, help="CPUs for audiomill's local Ray")
    parser.add_argument("--seed", type=int, default=0, help="corpus seed")
    parser.add_argument("--set", dest="sets", action="append", default=[],
                        help="extra audiomill --set override, e.g. ingest.part_size=4 (repeatable)")
    parser.add_argument("--repeat", type=int, default=3,
                        help="runs of each small-corpus measurement, interleaved; the fastest is kept")
    parser.add_argument("--timeout", type=float, default=1200.0, help="seconds allowed per subprocess")
    parser.add_argument("--naive-worker", nargs=2, metavar=("CORPUS", "OUT_TAR"), help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def write_results(args: argparse.Namespace, started: str, rows: dict[str, Any], verdicts: dict[str, Any],
                  runs: dict[str, Any]) -> Path:
    import audiomill

    results = {"started": started, "host": {"machine": platform.machine(), "cpu_count": os.cpu_count(),
                                           "python": platform.python_version()},
               "audiomill": {"version": audiomill.__version__, "path": os.path.dirname(audiomill.__file__)},
               "args": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
               "rows": rows, "verdicts": verdicts, "runs": runs}
    out = args.workdir / "results" / f"clean_cpu-{started}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2))
    return out


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    if args.naive_worker:
        print(json.dumps(naive_clean(Path(args.naive_worker[0]), Path(args.naive_worker[1]))))
        return
    work, started = args.workdir, time.strftime("%Y%m%d-%H%M%S")
    logs = work / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    corpora = {"small": args.hours} if args.skip_big else {"small": args.hours, "big": args.big_hours}
    dirs, seconds = {}, {}
    for size, hours in corpora.items():
        dirs[size], seconds[size], reused = ensure_corpus(work / f"corpus-{hours:g}h-seed{args.seed}", hours, args.seed)
        print(f"corpus {dirs[size]}: {seconds[size] / 3600:.3f} h ({'reused' if reused else 'built'})", flush=True)

    def audiomill_on(size: str):  # noqa: ANN202 - a measuring thunk
        return lambda: run_audiomill(dirs[size], work / f"out-{size}", args.cpus, args.sets, logs, args.timeout)

    plan = [("audiomill_small", args.repeat, audiomill_on("small")),
            ("naive_small", args.repeat, lambda: run_naive(dirs["small"], work / "naive-small.tar", logs, args.timeout))]
    if "big" in dirs:  # the big run is for memory, which needs no best-of
        plan.append(("audiomill_big", 1, audiomill_on("big")))
    runs = measure_all(plan)
    cores = {"audiomill_small": args.cpus, "naive_small": 1, "audiomill_big": args.cpus}
    rows = {name: summarize(seconds[name.rsplit("_", 1)[1]], run, cores[name])
            for name, run in runs.items() if "error" not in run}
    verdicts = print_report(rows, runs)
    print(f"\nresults: {write_results(args, started, rows, verdicts, runs)}")
    if any("error" in run for run in runs.values()):
        sys.exit(1)


if __name__ == "__main__":
    main()
