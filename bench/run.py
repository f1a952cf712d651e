"""Run every benchmark in bench/ (bench_*.py), one process each, then write bench/RESULTS.md.

Each benchmark prints its figures and writes bench/out/<name>.json (see _setup.write_results):
rows of measure, figure, baseline measured in the same run, target and whether it was met.
RESULTS.md shows one table per benchmark beside the machine it ran on. A benchmark that fails
or writes no results shows as FAILED there, and this exits non-zero.

    .venv/bin/python bench/run.py                  # all of them (long: tens of minutes)
    .venv/bin/python bench/run.py pages coverage   # some of them; RESULTS.md shows every one
    .venv/bin/python bench/run.py --report-only    # no runs: RESULTS.md from bench/out/*.json
    .venv/bin/python bench/run.py --quick          # smaller sizes, to check the suite works
"""

import argparse
import json
import os
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
OUT = HERE / "out"
RESULTS = HERE / "RESULTS.md"
sys.path.insert(0, str(HERE))

from _setup import machine_info  # noqa: E402

# Smaller runs that still exercise every path: their figures do not answer the targets.
QUICK = {
    "certificates": ["--single=10", "--naive=5", "--bulk=40", "--merged=20", "--long=200"],
    "coverage": ["--members=30000", "--repeat=3"],
    "import": ["--rows=2000", "--city=5000", "--baseline-sample=200"],
    "hours": ["--members=30000", "--requests=5"],
    "pages": ["--members=30000", "--requests=20"],
    "plans": ["--members=30000", "--requests=5"],
    "progress": ["--members=500", "--seconds=5", "--trial-seconds=2"],
    "quiz": ["--city=30000", "--members=2000", "--seconds=5"],
    "scaling": ["--sizes=3000,6000", "--passes=2", "--requests=5"],
    "seed": ["--members=30000", "--baseline-sample=500"],
    "terminal": ["--minutes=1", "--records=100"],
    "transcode": ["--seconds=10", "--repeat=1"],
    "live": ["--samples=3", "--seconds=3", "--connections=20"],
}


def scripts():
    return {path.stem.removeprefix("bench_"): path for path in sorted(HERE.glob("bench_*.py"))}


def git(*args) -> str:
    result = subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True)
    return result.stdout.strip() if result.returncode == 0 else ""


def run(name, script, quick):
    """Run one benchmark; (exit code, seconds). Its old results are removed first."""
    result_file = OUT / f"{name}.json"
    result_file.unlink(missing_ok=True)
    command = [sys.executable, str(script), *(QUICK.get(name, []) if quick else [])]
    print(f"=== {script.name} {' '.join(command[2:])}", flush=True)
    started = time.monotonic()
    returncode = subprocess.run(command, cwd=HERE).returncode
    return returncode, time.monotonic() - started


def number(value) -> str:
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        if value != value:  # NaN
            return "n/a"
        magnitude = abs(value)
        if magnitude >= 1000:
            return f"{value:,.0f}"
        if magnitude >= 100:
            return f"{value:.0f}"
        if magnitude >= 10:
            return f"{value:.1f}"
        return f"{value:.2f}"
    return str(value)


def with_unit(value, unit) -> str:
    if value is None or value == "":
        return "—"
    text = number(value)
    return f"{text} {unit}" if unit and not isinstance(value, str) else text


def cell(text) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def table(rows) -> list[str]:
    lines = [
        "| measure | figure | baseline (same run) | target | met |",
        "|---|---:|---|---|---|",
    ]
    for row in rows:
        baseline = with_unit(row.get("baseline"), row.get("unit", ""))
        if row.get("baseline_label") and row.get("baseline") is not None:
            baseline += f" ({row['baseline_label']})"
        met = row.get("met")
        verdict = "n/a" if met is None else "met" if met else "**NOT met**"
        measure = row["measure"] + (f" — {row['notes']}" if row.get("notes") else "")
        lines.append(
            f"| {cell(measure)} | {cell(with_unit(row['figure'], row.get('unit', '')))} | "
            f"{cell(baseline)} | {cell(row.get('target') or '')} | {verdict} |"
        )
    return lines


def machine_lines(before, after) -> list[str]:
    memory = f"{before['memory_gib']:.1f} GiB" if before.get("memory_gib") else "?"
    return [
        f"- CPU: {before['cpu']}, {before['cores']} cores; memory {memory}; {before['os']}",
        f"- Python {before['python']}, SQLite {before['sqlite']}, "
        f"PostgreSQL {before.get('postgresql') or 'not installed'}",
        "- load average (1/5/15 min) before: "
        + " / ".join(f"{x:.2f}" for x in before["load"])
        + ", after: "
        + " / ".join(f"{x:.2f}" for x in after["load"]),
    ]


def write_report(outcomes, before, after, quick, started, finished):
    """RESULTS.md: every benchmark, run or not; a failed or missing one says so."""
    commit = git("rev-parse", "--short", "HEAD") or "unknown"
    dirty = " (with uncommitted changes)" if git("status", "--porcelain") else ""
    lines = [
        "# Benchmark results",
        "",
        "Written by `bench/run.py` (`make bench`). Each figure stands beside its baseline, "
        "measured in the same run on the same machine, and its target.",
        "",
        f"- date: {started} to {finished} (UTC)",
        f"- git commit: {commit}{dirty}",
        *machine_lines(before, after),
    ]
    if quick:
        lines += [
            "",
            "**QUICK MODE** (`--quick`): smaller data sets and fewer repetitions, to check the "
            "suite runs; these figures do not answer the targets.",
        ]
    lines += ["", "| benchmark | state | measured at (UTC) | run |", "|---|---|---|---|"]
    sections = []
    failed = 0
    for name, outcome in outcomes.items():
        result = outcome.get("result")
        state = outcome["state"]
        failed += state != "ok"
        measured = result["measured_at"] if result else "—"
        how = " ".join(result.get("argv", [])) if result else ""
        quick_run = bool(result) and result.get("argv") == QUICK.get(name)
        if quick_run:
            how += " (QUICK: figures do not answer the targets)"
        took = f"{outcome['seconds']:.0f} s" if outcome.get("seconds") is not None else ""
        lines.append(
            f"| {name} | {state if state == 'ok' else f'**{state}**'} | {measured} | "
            f"{cell(' '.join(x for x in (took, how) if x) or 'defaults')} |"
        )
        sections.append("")
        title = result["title"] if result else name
        sections.append(f"## {name}: {title}")
        sections.append("")
        if state != "ok":
            sections.append(f"**FAILED: {state}.**")
            sections.append("")
        if quick_run:
            sections.append(
                f"**Quick mode** (`{' '.join(QUICK[name])}`): these figures do not answer "
                "the targets."
            )
            sections.append("")
        if result is None:
            sections.append("No results were written.")
            continue
        if result.get("data"):
            sections.append(f"Data: {result['data']}")
            sections.append("")
        sections += table(result["rows"])
        for note in result.get("notes", []):
            sections.append(f"- {note}")
        summarized = "--summarize" in result.get("argv", [])
        if result.get("machine") and result["machine"].get("load") and not summarized:
            load = " / ".join(f"{x:.2f}" for x in result["machine"]["load"])
            sections.append(f"- load average when it finished: {load}")
    RESULTS.write_text("\n".join([*lines, *sections]) + "\n")
    return failed


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("only", nargs="*", help="benchmarks to run (default: all)")
    parser.add_argument("--report-only", action="store_true", help="run none; just RESULTS.md")
    parser.add_argument("--quick", action="store_true", help="smaller sizes (figures not valid)")
    args = parser.parse_args()
    available = scripts()
    unknown = set(args.only) - set(available)
    if unknown:
        raise SystemExit(f"unknown benchmark(s): {', '.join(sorted(unknown))}")
    OUT.mkdir(parents=True, exist_ok=True)
    started = datetime.now(UTC).isoformat(timespec="seconds")
    before = machine_info()
    outcomes = {}
    for name, script in available.items():
        outcome = {"seconds": None}
        if not args.report_only and (not args.only or name in args.only):
            returncode, outcome["seconds"] = run(name, script, args.quick)
            outcome["state"] = "ok" if returncode == 0 else f"failed (exit {returncode})"
        result_file = OUT / f"{name}.json"
        if result_file.exists():
            outcome["result"] = json.loads(result_file.read_text())
            if "state" not in outcome:
                outcome["state"] = "ok" if outcome["result"].get("ok") else "failed"
            elif outcome["state"] == "ok" and not outcome["result"].get("ok"):
                outcome["state"] = "failed (a part did not run)"
        else:
            outcome.setdefault("state", "no results")
            if outcome["state"] == "ok":
                outcome["state"] = "failed (no results written)"
        outcomes[name] = outcome
    after = machine_info()
    finished = datetime.now(UTC).isoformat(timespec="seconds")
    failed = write_report(outcomes, before, after, args.quick, started, finished)
    print(f"=== wrote {RESULTS.relative_to(ROOT)}: {len(outcomes) - failed} ok, {failed} not ok")
    for name, outcome in outcomes.items():
        if outcome["state"] != "ok":
            print(f"!!! {name}: {outcome['state']}")
    return 1 if failed else 0


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    sys.exit(main())
