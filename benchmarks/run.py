"""Time skopt_nn's estimators beside the anchor systems, side by side in one run.

    python benchmarks/run.py [--workloads w1,w2,w3] [--rounds 3] [--threads 1] [--device cpu]

Every config (workload, implementation) runs in its own fresh process
(``benchmarks/worker.py``), round-robin over ``--rounds`` rounds (the order is
rotated each round), so slow drift of a busy machine hits every config alike and
each process's peak RSS belongs to one config.  Each worker reports the median
wall time of its timed fits; a row's ratio is the median over rounds of
``time / anchor's time in the same round``.  Raw records go to
``benchmarks/results/<timestamp>.jsonl``; ``--summary FILE`` reprints a table
from such a file.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, HERE)

from workloads import WORKLOADS  # noqa: E402

THREAD_VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS",
               "VECLIB_MAXIMUM_THREADS", "NUMEXPR_NUM_THREADS")


# --------------------------------------------------------------------------- running
def run_worker(wl: str, impl: str, a) -> dict:
    cmd = [sys.executable, os.path.join(HERE, "worker.py"), "--workload", wl, "--impl", impl,
           "--warmup", str(a.warmup), "--threads", str(a.threads), "--device", a.device,
           "--seed", str(a.seed)]
    if a.repeats is not None:
        cmd += ["--repeats", str(a.repeats)]
    env = dict(os.environ)
    env.update({var: str(a.threads) for var in THREAD_VARS})
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [ROOT, env.get("PYTHONPATH")]))
    try:
        out = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True,
                             timeout=a.timeout)
    except subprocess.TimeoutExpired:
        return {"status": "error", "reason": f"timeout after {a.timeout} s"}
    lines = [line for line in out.stdout.splitlines() if line.startswith("{")]
    if out.returncode != 0 or not lines:
        tail = (out.stderr or out.stdout).strip().splitlines()[-1:] or ["no output"]
        return {"status": "error", "reason": f"rc={out.returncode}: {tail[0]}",
                "stderr": out.stderr[-3000:]}
    return json.loads(lines[-1])


def meta(a) -> dict:
    from importlib.metadata import PackageNotFoundError
    from importlib.metadata import version as dist_version

    def version(dist):  # without importing it: the parent must stay small
        try:
            return dist_version(dist)
        except PackageNotFoundError:
            return None

    def git(*args):
        try:
            return subprocess.run(["git", *args], cwd=ROOT, capture_output=True,
                                  text=True).stdout.strip()
        except OSError:
            return ""

    rev = git("rev-parse", "--short", "HEAD") or None
    if rev and git("status", "--porcelain", "--untracked-files=no", "--", "skopt_nn"):
        rev += "+dirty"  # skopt_nn differs from the commit
    dists = ("numpy", "scikit-learn", "torch", "skorch", "threadpoolctl")
    return {"meta": {"time": time.strftime("%Y-%m-%d %H:%M:%S"), "argv": sys.argv[1:],
                     "workloads": a.workloads, "rounds": a.rounds, "threads": a.threads,
                     "device": a.device, "repeats": a.repeats, "warmup": a.warmup,
                     "seed": a.seed, "git": rev, "cpus": os.cpu_count(),
                     "python": platform.python_version(),
                     "versions": {d: version(d) for d in dists},
                     "loadavg": os.getloadavg()}}


# --------------------------------------------------------------------------- summary
def _median(xs):
    xs = [x for x in xs if x is not None]
    return statistics.median(xs) if xs else None


def _span(xs):
    xs = list(xs)
    return (min(xs), max(xs)) if len(xs) > 1 else None


def aggregate(records):
    """One row per (workload, impl) in registry order, paired with its anchor by round."""
    by = {}
    for r in records:
        by.setdefault((r["workload"], r["impl"]), []).append(r)
    rows = []
    for key, wl in WORKLOADS.items():
        for impl in wl.impls:
            recs = by.get((key, impl.name))
            if not recs:
                continue
            ok = [r for r in recs if r["res"].get("status") == "ok"]
            row = {"workload": key, "impl": impl.name, "ref": impl.ref, "anchor": impl.anchor,
                   "metric": wl.metric, "runs": len(recs), "ok": len(ok)}
            if not ok:
                bad = recs[-1]["res"]
                row["status"] = bad.get("status", "error")
                row["reason"] = bad.get("reason", "?")
                rows.append(row)
                continue
            ref = {r["round"]: r["res"] for r in by.get((key, impl.ref), [])
                   if r["res"].get("status") == "ok"}
            res = {r["round"]: r["res"] for r in ok}
            paired = [rd for rd in res if rd in ref]
            row.update(
                status="ok",
                median_s=_median(x["median_s"] for x in res.values()),
                cpu_s=_median(x.get("median_cpu_s") for x in res.values()),
                ratio=_median(res[rd]["median_s"] / ref[rd]["median_s"] for rd in paired),
                ratio_range=_span(res[rd]["median_s"] / ref[rd]["median_s"] for rd in paired),
                cpu_ratio=_median(res[rd]["median_cpu_s"] / ref[rd]["median_cpu_s"]
                                  for rd in paired),
                value=_median(x["value"] for x in res.values()),
                ref_value=_median(x["value"] for x in ref.values()),
                rss_mb=_median(x["peak_rss_mb"] for x in res.values()),
                rss_ratio=_median(res[rd]["peak_rss_mb"] / ref[rd]["peak_rss_mb"]
                                  for rd in paired),
                fit_mb=_median(x["peak_rss_mb"] - x["base_rss_mb"] for x in res.values()),
                load=max(x["loadavg1"] for x in res.values()),
                info=ok[-1]["res"].get("info", {}),
                values=sorted({round(x["value"], 6) for x in res.values()}),
            )
            rows.append(row)
    return rows


def _fmt(x, spec):
    return "-" if x is None else format(x, spec)


def _metric(row):
    if row.get("value") is None:
        return "-"
    name = "mse" if row["metric"] == "test_mse" else "acc"
    return f"{name} {row['value']:.4f}"


COLUMNS = ("workload", "impl", "median s", "ratio", "range", "cpu s", "cpu ratio", "metric",
           "peak RSS MB", "RSS ratio", "fit MB", "load1")


def table_cells(row):
    if row["status"] != "ok":
        return [row["workload"], row["impl"], row["status"], "", "", "", "", row["reason"][:60],
                "", "", "", ""]
    name = row["impl"] + ("" if row["impl"] != row["ref"] else " (anchor)")
    span = row["ratio_range"]
    span = "-" if span is None or row["impl"] == row["ref"] else f"{span[0]:.2f}-{span[1]:.2f}"
    return [row["workload"], name, _fmt(row["median_s"], ".3f"), _fmt(row["ratio"], ".2f") + "x",
            span,
            _fmt(row["cpu_s"], ".3f"), _fmt(row["cpu_ratio"], ".2f") + "x", _metric(row),
            _fmt(row["rss_mb"], ".0f"),
            _fmt(row["rss_ratio"], ".2f") + "x", _fmt(row["fit_mb"], ".0f"),
            _fmt(row["load"], ".2f")]


def print_table(rows, markdown=False):
    cells = [table_cells(r) for r in rows]
    if markdown:
        print("| " + " | ".join(COLUMNS) + " |")
        print("|" + "|".join(" --- " for _ in COLUMNS) + "|")
        for c in cells:
            print("| " + " | ".join(c) + " |")
        return
    widths = [max(len(str(x)) for x in col) for col in zip(COLUMNS, *cells, strict=False)]
    line = "  ".join("%-*s" if i < 2 else "%*s" for i in range(len(COLUMNS)))
    print(line % tuple(v for pair in zip(widths, COLUMNS, strict=True) for v in pair))
    prev = None
    for c in cells:
        if prev is not None and c[0] != prev:
            print()
        prev = c[0]
        print(line % tuple(v for pair in zip(widths, c, strict=True) for v in pair))


# (workload, impl, max time ratio, require metric >= anchor's, max RSS ratio); the
# time targets hold on every machine class (the engine v2 issue's figures)
TARGETS = (
    ("w2", "ours_sgd_log", 0.7, True, None),
    ("w1", "ours_mlp", 0.25, False, None),
    ("w3", "ours_mlp", 0.5, True, None),
    ("w1", "ours_mlp", None, False, 1.5),
    ("w3", "ours_mlp", None, False, 1.5),
)


def print_targets(rows):
    found = {(r["workload"], r["impl"]): r for r in rows}
    ran = {r["workload"] for r in rows}
    print("\nTargets (ratios are medians of per-round ratios to the anchor):")
    for wl, impl, t_max, metric_ge, rss_max in TARGETS:
        if wl not in ran:
            continue
        row = found.get((wl, impl))
        if t_max is not None:
            what = f"{wl} {impl} time <= {t_max:g}x {row['ref'] if row else 'anchor'}"
            if metric_ge:
                what += " at >= its " + ("accuracy" if wl != "w1" else "metric")
        else:
            what = f"{wl} {impl} peak RSS <= {rss_max:g}x {row['ref'] if row else 'anchor'}"
        if row is None or row["status"] != "ok" or row.get("ratio") is None:
            status = "not run" if row is None else row.get("reason", "no paired anchor")
            print(f"  N/A   {what}: {status}")
            continue
        if t_max is not None:
            good = row["ratio"] <= t_max
            got = f"{row['ratio']:.2f}x (cpu {row['cpu_ratio']:.2f}x)"
            if metric_ge:
                good = good and row["value"] >= row["ref_value"]
                got += f", {_metric(row)} vs {row['ref_value']:.4f}"
        else:
            good = row["rss_ratio"] <= rss_max
            got = (f"{row['rss_ratio']:.2f}x ({row['rss_mb']:.0f} MB; "
                   f"fit itself {row['fit_mb']:.0f} MB)")
        print(f"  {'PASS' if good else 'MISS'}  {what}: {got}")


def summarise(path, markdown=False):
    records, header = [], None
    with open(path) as f:
        for line in f:
            if not line.strip():
                continue
            rec = json.loads(line)
            if "meta" in rec:
                header = rec["meta"]
            else:
                records.append(rec)
    rows = aggregate(records)
    if header:
        print(f"\n{path}: {header['time']}, rounds {header['rounds']}, threads "
              f"{header['threads']}, device {header['device']}, git {header['git']}, "
              f"{header['cpus']} CPUs")
    print("ratio, cpu ratio, RSS ratio: vs the row's anchor (the sklearn row it is compared with),"
          "\n  median of per-round ratios; range: lowest-highest per-round time ratio;\n"
          "fit MB: peak RSS minus RSS before the first fit; load1: highest 1-min loadavg seen\n")
    print_table(rows, markdown=markdown)
    for r in rows:
        if r["status"] == "ok" and r["impl"] != r["ref"] and r["ratio"] is None:
            print(f"note: {r['workload']} {r['impl']}: anchor {r['ref']} did not run")
        if r["status"] == "ok" and len(r["values"]) > 1:
            print(f"note: {r['workload']} {r['impl']}: the metric differed between rounds "
                  f"({', '.join(map(str, r['values']))}); nondeterminism or code changed mid-run")
        if r["ok"] < r["runs"]:
            print(f"note: {r['workload']} {r['impl']}: {r['runs'] - r['ok']} of {r['runs']} "
                  "runs failed (see the results file)")
    print_targets(rows)
    loads = [r["load"] for r in rows if r.get("load") is not None]
    if loads and max(loads) > (header or {}).get("cpus", 2):
        print(f"\nnote: loadavg reached {max(loads):.2f} on {header['cpus']} CPUs: other "
              "processes competed for the cores; compare ratios, not absolute seconds.")
    return rows


# --------------------------------------------------------------------------- main
def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--workloads", default="w1,w2,w3")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--device", default="cpu", help="device of the torch-based impls")
    p.add_argument("--repeats", type=int, default=None,
                   help="timed fits per worker (default: w1 2, w2 2, w3 1)")
    p.add_argument("--warmup", type=int, default=1, help="untimed fits per worker")
    p.add_argument("--impls", default=None, help="comma list: run only these impls "
                   "(their anchors are added)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--timeout", type=int, default=900, help="seconds per worker")
    p.add_argument("--out", default=None, help="jsonl file (default results/<time>.jsonl)")
    p.add_argument("--summary", default=None, help="only print the table of a results file")
    p.add_argument("--markdown", action="store_true", help="print the table as markdown")
    a = p.parse_args()
    if a.summary:
        summarise(a.summary, a.markdown)
        return
    keys = [k.strip() for k in a.workloads.split(",") if k.strip()]
    for k in keys:
        if k not in WORKLOADS:
            p.error(f"unknown workload {k!r} (choose from {', '.join(WORKLOADS)})")
    plan = []
    for k in keys:
        names = [i.name for i in WORKLOADS[k].impls]
        if a.impls:
            wanted = set(a.impls.split(","))
            wanted |= {i.ref for i in WORKLOADS[k].impls if i.name in wanted}
            names = [n for n in names if n in wanted]
        plan += [(k, n) for n in names]
    if not plan:
        p.error("nothing to run")
    out = a.out or os.path.join(HERE, "results", time.strftime("%Y%m%d-%H%M%S") + ".jsonl")
    os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
    print(f"preparing data ({', '.join(keys)}) ...", flush=True)
    # in a child process: the parent must stay small, because Linux hands a parent's
    # ru_maxrss on to the workers it starts
    subprocess.run([sys.executable, os.path.join(HERE, "worker.py"), "--prepare", ",".join(keys),
                    "--seed", str(a.seed)], cwd=ROOT, check=True)
    with open(out, "a") as f:
        f.write(json.dumps(meta(a)) + "\n")
        for rnd in range(a.rounds):
            shift = (rnd * len(plan)) // a.rounds
            for wl, impl in plan[shift:] + plan[:shift]:
                t0 = time.time()
                res = run_worker(wl, impl, a)
                rec = {"round": rnd, "workload": wl, "impl": impl, "res": res,
                       "wall_s": round(time.time() - t0, 1)}
                f.write(json.dumps(rec) + "\n")
                f.flush()
                if res.get("status") == "ok":
                    msg = (f"{res['median_s']:.3f} s  {res['metric']} {res['value']:.4f}  "
                           f"rss {res['peak_rss_mb']:.0f} MB  load {res['loadavg1']}")
                else:
                    msg = f"{res.get('status')}: {res.get('reason', '')[:200]}"
                print(f"[round {rnd + 1}/{a.rounds}] {wl} {impl:<22} {msg}", flush=True)
    print(f"\nraw results: {os.path.relpath(out)}")
    summarise(out, a.markdown)


if __name__ == "__main__":
    main()
