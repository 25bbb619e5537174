"""`segment` run again on a field whose view weights are cached, side by side for several checkouts.

    python bench/bench_repeat.py --repo /work/main --repo . -- SCENE --field F --view V --point X,Y \
        --segmenter gt --gt-masks SCENE/masks --views 25

Every checkout (--repo, default this one) gets its own cache folder under --scratch (SA3D_CACHE),
emptied first unless --reuse-cache: one run fills it ("first"), then --runs repeats ("again")
alternate between the checkouts, so that the load of the machine falls on each alike. Per run:
wall, user and system seconds of the child, the 1-minute load average before and after, and the
stages of its summary.json. The arguments after `--` go to `main.py segment` as they are (--out is
set here). Writes the runs under --label (default "segment") into bench/results/repeat.json, keeping
the other labels there, and prints a table.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "bench" / "results" / "repeat.json"
sys.path.insert(0, str(ROOT))

from engine.io import atomic_write  # noqa: E402


def fail(message: str) -> None:
    print(f"error: {message}", file=sys.stderr)
    sys.exit(2)


def timed_segment(repo: Path, cache: Path, out: Path, args: list[str]) -> dict:
    """One `main.py segment` run of checkout `repo` with SA3D_CACHE=cache: seconds, load, stages."""
    env = dict(os.environ, SA3D_CACHE=str(cache), OMP_WAIT_POLICY="PASSIVE")
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    load = os.getloadavg()[0]
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "main.py", "segment", *args, "--out", str(out)], cwd=repo, env=env,
                          stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != 0:
        fail(f"segment in {repo} exited {done.returncode} ({done.stderr.strip().splitlines()[-1:]}): "
             "fix its arguments (after `--`)")
    summary = json.loads((out / "summary.json").read_text())
    return {"wall_s": round(wall, 2), "user_s": round(after.ru_utime - before.ru_utime, 2),
            "sys_s": round(after.ru_stime - before.ru_stime, 2),
            "load_before": load, "load_after": os.getloadavg()[0],
            "view_weights": summary["view_weights"], "stages_s": summary["seconds"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repo", action="append", type=Path, help="a checkout to run (repeatable; default: this one)")
    parser.add_argument("--runs", type=int, default=2, help="repeats per checkout after the first run")
    parser.add_argument("--scratch", type=Path, default=Path("/tmp/sa3d-bench-repeat"),
                        help="where the caches and outputs go")
    parser.add_argument("--reuse-cache", action="store_true", help="keep what the caches hold from an earlier bench")
    parser.add_argument("--label", default="segment", help="the runs' name in bench/results/repeat.json")
    parser.add_argument("segment_args", nargs=argparse.REMAINDER, help="-- then the arguments of `segment`")
    a = parser.parse_args()
    args = [x for x in a.segment_args if x != "--"]
    if not args:
        fail("no segment arguments: give them after `--` (scene, --field, prompts, --segmenter)")
    repos = [r.resolve() for r in (a.repo or [ROOT])]
    caches = [a.scratch / f"cache-{i}" for i in range(len(repos))]
    for cache in caches:
        if not a.reuse_cache:
            shutil.rmtree(cache, ignore_errors=True)
        cache.mkdir(parents=True, exist_ok=True)
    runs = {str(repo): {"first": None, "again": []} for repo in repos}
    for i, (repo, cache) in enumerate(zip(repos, caches)):
        runs[str(repo)]["first"] = timed_segment(repo, cache, a.scratch / f"out-{i}", args)
    for _ in range(a.runs):
        for i, (repo, cache) in enumerate(zip(repos, caches)):
            runs[str(repo)]["again"].append(timed_segment(repo, cache, a.scratch / f"out-{i}", args))

    print(f"{'checkout':40s} {'run':6s} {'wall s':>7s} {'user s':>7s} {'sys s':>6s} {'load':>10s}  stages (s)")
    for repo, result in runs.items():
        for name, run in [("first", result["first"]), *[("again", r) for r in result["again"]]]:
            stages = {k: v for k, v in run["stages_s"].items() if v >= 0.3 and k != "view_weights_total"}
            print(f"{repo[-40:]:40s} {name:6s} {run['wall_s']:7.2f} {run['user_s']:7.2f} {run['sys_s']:6.2f} "
                  f"{run['load_before']:4.1f}-{run['load_after']:4.1f}  {stages}")
    results = json.loads(OUT.read_text()) if OUT.exists() else {}
    results[a.label] = {"command": "python bench/bench_repeat.py " + " ".join(sys.argv[1:]),
                        "reused_caches": a.reuse_cache, "runs": runs}
    OUT.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(OUT, json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
