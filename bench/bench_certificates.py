"""Certificate PDFs with WeasyPrint: single latency, bulk rate, size, memory of long runs.

Measured in the same run: the naive loop (the system's Noto Serif CJK SC by family name, a
fresh WeasyPrint set-up for every certificate, the seal as a PNG with transparency, segno's
mask search) against certificates/render.py. Names are realistic, one in 25 with a rare
character (𠮷 䶮 赟 堃 ...); the default completion template with a drawn seal.

Rates are given per CPU second of the rendering process (one core, whatever else the
machine runs) and per wall second.

    .venv/bin/python bench/bench_certificates.py [--single 40] [--naive 30] [--bulk 300]
        [--long 3000] [--recycle 1000]
"""

import argparse
import json
import random
import resource
import statistics
import subprocess
import sys
import tempfile
import time

from _setup import OUT, ROOT, django_with_fresh_db, machine, result_row, write_results

TARGET_SINGLE_S = 0.3
TARGET_BULK_PER_S = 20
TARGET_KB = 300

SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘蒋蔡余杜叶程"
GIVEN = (
    "伟芳娜秀英敏静丽强磊军洋勇艳杰娟涛明超兰霞平刚华玉萍红玲芬燕彬鹏辉国志海东春梅"
    "婷琳瑶琪欣怡涵浩宇轩萱诺"
)
RARE = ["𠮷", "䶮", "赟", "堃", "喆", "犇", "淼", "燚", "垚", "玥", "祎", "珺", "旻", "𡒄"]
ORGS = [
    "城关区幸福社区党支部",
    "青山县红旗村党支部",
    "示范市机关第三党支部",
    "开发区科技园联合党支部",
]


def names(count, seed=7):
    rng = random.Random(seed)
    out = []
    for i in range(count):
        given = "".join(rng.choice(GIVEN) for _ in range(rng.choice((1, 2))))
        if i % 25 == 3:
            given = given[:-1] + rng.choice(RARE)
        out.append(rng.choice(SURNAMES) + given)
    return out


def contents(count, seed=7):
    from datetime import date
    from decimal import Decimal

    from certificates.render import Content

    return [
        Content(
            kind="completion",
            number=f"2026-Q3-{i + 1:06d}",
            code=f"{i:016x}"[-16:],
            verify_url=f"https://lunxun.example.cn/certificates/verify/Zq3{i:013d}/",
            name=name,
            organization_name=ORGS[i % len(ORGS)],
            round_title="2026年第三季度全市党员专题轮训",
            opens_on=date(2026, 7, 1),
            closes_on=date(2026, 9, 30),
            hours=Decimal("12.5"),
            year=2026,
            issued_on=date(2026, 10, 8),
        )
        for i, name in enumerate(names(count, seed))
    ]


def default_template():
    """The shipped completion template with a drawn seal (unsaved: no database needed)."""
    from django.core.files.images import ImageFile
    from wagtail.images.models import Image

    from certificates import default_template as shipped
    from certificates.models import CertificateTemplate

    path = OUT / "seal.png"
    path.write_bytes(shipped.sample_seal_png("示范市委组织部"))
    seal = Image(title="seal", file=ImageFile(path.open("rb")))
    return CertificateTemplate(
        name="bench",
        kind="completion",
        title=shipped.COMPLETION_TITLE,
        body=shipped.COMPLETION_BODY,
        issuer_lines="中共示范市委组织部",
        seal=seal,
        border="classic",
    )


class Naive:
    """One certificate per write_pdf, the straightforward way."""

    def __init__(self, template):
        import base64
        import re

        from certificates import render

        self.render = render
        self.look = render.look_of(template)
        with template.seal.file.open("rb") as file:
            png = file.read()
        self.seal = "data:image/png;base64," + base64.b64encode(png).decode()
        css = render.CSS_FILE.read_text(encoding="utf-8")
        css = re.sub(r"font-family:[^;]+;", 'font-family: "Noto Serif CJK SC";', css)
        border = base64.b64encode(render.BORDERS["classic"].encode()).decode()
        self.css = (
            f"{css}@page {{ background: url(data:image/svg+xml;base64,{border}) "
            "no-repeat 0 0 / 297mm 210mm; }"
        )

    def pdf(self, content):
        import segno
        from weasyprint import CSS, HTML

        page = self.render.prepare([content], self.look).page
        page = page.replace(self.look.seal, self.seal).replace(
            "lunxun:qr/c0", segno.make(content.verify_url, error="m").svg_data_uri(border=0)
        )
        return HTML(string=page).write_pdf(stylesheets=[CSS(string=self.css)])


def timed_each(function, items):
    walls, started_cpu = [], time.process_time()
    outputs = []
    for item in items:
        started = time.perf_counter()
        outputs.append(function(item))
        walls.append(time.perf_counter() - started)
    return walls, time.process_time() - started_cpu, outputs


def pdffonts_ok(pdf: bytes) -> bool:
    """Every font embedded, none Type 3 (a fallback drawn as bitmaps)."""
    with tempfile.NamedTemporaryFile(suffix=".pdf") as file:
        file.write(pdf)
        file.flush()
        result = subprocess.run(["pdffonts", file.name], capture_output=True, check=True)
    rows = result.stdout.decode().splitlines()[2:]
    return bool(rows) and all(" yes " in row and "Type 3" not in row for row in rows)


def median_p95(values):
    values = sorted(values)
    return statistics.median(values), values[min(len(values) - 1, round(0.95 * (len(values) - 1)))]


def rss_mb() -> float:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * resource.getpagesize() / 1024 / 1024


def peak_rss_mb() -> float:
    """VmHWM: unlike ru_maxrss, not inherited from the process that started this one."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return 0.0


def memory_child(mode: str, count: int, recycle: int):
    """Run in a fresh process: a long run, RSS along the way (printed as JSON)."""
    from certificates import render

    template = default_template()
    points = []
    stats = {}
    started = time.perf_counter()
    if mode == "naive":
        naive = Naive(template)
        for i, content in enumerate(contents(count, seed=11)):
            naive.pdf(content)
            if (i + 1) % max(1, count // 4) == 0:
                points.append((i + 1, round(rss_mb())))
    else:
        run = render.iter_rendered(
            contents(count, seed=11),
            template,
            batch=50,
            recycle_after=recycle if mode == "recycled" else 0,
            stats=stats,
        )
        for i, (_, pdf) in enumerate(run):
            assert pdf.startswith(b"%PDF")
            if (i + 1) % max(1, count // 4) == 0:
                points.append((i + 1, round(rss_mb())))
    elapsed = time.perf_counter() - started
    peak = peak_rss_mb()
    print(
        json.dumps(
            {
                "points": points,
                "peak_mb": round(peak),
                "child_peak_mb": round(stats.get("child_peak_rss_kb", 0) / 1024),
                "children": stats.get("children", 0),
                "per_s": count / elapsed,
            }
        )
    )


def run_memory(mode, count, recycle):
    result = subprocess.run(
        [
            sys.executable,
            __file__,
            "--memory-child",
            mode,
            "--long",
            str(count),
            "--recycle",
            str(recycle),
        ],
        capture_output=True,
        text=True,
        cwd=ROOT / "bench",
        check=False,
    )
    if result.returncode != 0:
        print(result.stderr[-2000:], file=sys.stderr)
        raise SystemExit(f"memory run {mode} failed")
    return json.loads(result.stdout.strip().splitlines()[-1])


def kb(size):
    return size / 1024


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--single", type=int, default=40)
    parser.add_argument("--naive", type=int, default=30)
    parser.add_argument("--bulk", type=int, default=300)
    parser.add_argument("--merged", type=int, default=200)
    parser.add_argument("--long", type=int, default=3000)
    parser.add_argument("--recycle", type=int, default=1000)
    parser.add_argument("--memory-child", choices=["naive", "in-process", "recycled"])
    args = parser.parse_args()
    django_with_fresh_db("certificates")

    if args.memory_child:
        memory_child(args.memory_child, args.long, args.recycle)
        return 0

    from certificates import fonts, render

    template = default_template()
    started = time.perf_counter()
    fonts.faces()
    font_setup = time.perf_counter() - started
    started = time.perf_counter()
    render.render_one(contents(1)[0], template)
    first = time.perf_counter() - started

    # On demand: one certificate, this process warm.
    single_items = contents(args.single, seed=1)
    walls, _, single_pdfs = timed_each(lambda c: render.render_one(c, template), single_items)
    median, p95 = median_p95(walls)

    # Naive loop, same machine, same run.
    naive = Naive(template)
    naive.pdf(contents(1)[0])
    naive_items = contents(args.naive, seed=2)
    naive_walls, naive_cpu, naive_pdfs = timed_each(naive.pdf, naive_items)
    naive_rate_cpu = len(naive_items) / naive_cpu
    naive_rate_wall = len(naive_items) / sum(naive_walls)
    naive_median, naive_p95 = median_p95(naive_walls)

    # Bulk: render_many.
    bulk_items = contents(args.bulk, seed=3)
    started, started_cpu = time.perf_counter(), time.process_time()
    bulk_pdfs = render.render_many(bulk_items, template)
    bulk_wall = time.perf_counter() - started
    bulk_cpu = time.process_time() - started_cpu
    assert len(bulk_pdfs) == len(bulk_items)
    bulk_rate_cpu = len(bulk_items) / bulk_cpu
    bulk_rate_wall = len(bulk_items) / bulk_wall
    sizes = sorted(len(pdf) for pdf in bulk_pdfs + single_pdfs)
    rare = [
        pdf for item, pdf in zip(bulk_items, bulk_pdfs, strict=True) if fonts.extra_faces(item.name)
    ]
    fonts_ok = all(pdffonts_ok(pdf) for pdf in bulk_pdfs[:20] + rare[:5])

    # Merged print file.
    started = time.perf_counter()
    merged = render.render_merged(contents(args.merged, seed=4), template)
    merged_wall = time.perf_counter() - started

    # Memory of long runs, each in a fresh process.
    memory_naive = run_memory("naive", max(100, args.long // 10), 0)
    memory_in = run_memory("in-process", args.long, 0)
    memory_recycled = run_memory("recycled", args.long, args.recycle)

    def verdict(ok):
        return "met" if ok else "NOT met"

    print(f"bench_certificates  machine: {machine()}")
    print(
        f"  font files: {font_setup:.2f} s (cut once per machine, then cached); first "
        f"certificate in a fresh process {first:.2f} s"
    )
    print(f"  {'measure':<44} {'naive loop':>14} {'render.py':>14}  target")
    print(
        f"  {'single, median / p95 (s)':<44} "
        f"{naive_median:>6.3f}/{naive_p95:<7.3f}"
        f"{median:>6.3f}/{p95:<7.3f}  <= {TARGET_SINGLE_S} s: {verdict(p95 <= TARGET_SINGLE_S)}"
    )
    print(
        f"  {'bulk, certificates / CPU s (one core)':<44} {naive_rate_cpu:>14.1f} "
        f"{bulk_rate_cpu:>14.1f}  >= {TARGET_BULK_PER_S}: "
        f"{verdict(bulk_rate_cpu >= TARGET_BULK_PER_S)}"
    )
    print(
        f"  {'bulk, certificates / wall s':<44} {naive_rate_wall:>14.1f} {bulk_rate_wall:>14.1f}"
        f"  (machine shared: {verdict(bulk_rate_wall >= TARGET_BULK_PER_S)})"
    )
    naive_sizes = sorted(len(pdf) for pdf in naive_pdfs)
    print(
        f"  {'PDF size, median / max (KB)':<44} "
        f"{kb(statistics.median(naive_sizes)):>6.0f}/{kb(naive_sizes[-1]):<7.0f}"
        f"{kb(statistics.median(sizes)):>6.0f}/{kb(sizes[-1]):<7.0f}  <= {TARGET_KB} KB: "
        f"{verdict(kb(sizes[-1]) <= TARGET_KB)}"
    )
    print(
        f"  {'fonts embedded, no Type 3 (pdffonts)':<44} {'':>14} "
        f"{'yes' if fonts_ok else 'NO':>14}  ({len(rare)} of {len(bulk_items)} with rare names)"
    )
    print(
        f"  merged print file: {args.merged} certificates, {kb(len(merged)):.0f} KB, "
        f"{merged_wall:.1f} s"
    )
    print("  memory of a long run (RSS MB at each quarter; peak):")
    print(
        f"    naive loop, {max(100, args.long // 10)} certificates: "
        f"{memory_naive['points']}; peak {memory_naive['peak_mb']}"
    )
    print(
        f"    render.py in one process, {args.long}: {memory_in['points']}; peak "
        f"{memory_in['peak_mb']}; {memory_in['per_s']:.1f}/s wall"
    )
    print(
        f"    render.py recycled every {args.recycle}, {args.long}: parent "
        f"{memory_recycled['points']}, peak {memory_recycled['peak_mb']}; "
        f"{memory_recycled['children']} children, peak {memory_recycled['child_peak_mb']}; "
        f"{memory_recycled['per_s']:.1f}/s wall"
    )
    growth = memory_in["points"][-1][1] - memory_in["points"][0][1]
    print(
        f"    bounded: in-process growth over the last three quarters {growth} MB; "
        f"children never exceed {memory_recycled['child_peak_mb']} MB however long the run"
    )
    naive_label = "naive loop: a fresh WeasyPrint set-up per certificate"
    write_results(
        "certificates",
        [
            result_row(
                "one certificate on demand, p95",
                round(p95, 3),
                "s",
                baseline=round(naive_p95, 3),
                baseline_label=naive_label,
                target=f"<= {TARGET_SINGLE_S} s",
                met=p95 <= TARGET_SINGLE_S,
                notes=f"median {median:.3f} s (naive {naive_median:.3f} s)",
            ),
            result_row(
                "bulk, certificates per CPU second (one core)",
                round(bulk_rate_cpu, 1),
                "/s",
                baseline=round(naive_rate_cpu, 1),
                baseline_label=naive_label,
                target=f">= {TARGET_BULK_PER_S}",
                met=bulk_rate_cpu >= TARGET_BULK_PER_S,
                notes=f"{len(bulk_items)} certificates",
            ),
            result_row(
                "bulk, certificates per wall second (machine shared)",
                round(bulk_rate_wall, 1),
                "/s",
                baseline=round(naive_rate_wall, 1),
                baseline_label=naive_label,
            ),
            result_row(
                "PDF size, largest",
                round(kb(sizes[-1])),
                "KB",
                baseline=round(kb(naive_sizes[-1])),
                baseline_label=naive_label,
                target=f"<= {TARGET_KB} KB",
                met=kb(sizes[-1]) <= TARGET_KB,
                notes=f"median {kb(statistics.median(sizes)):.0f} KB",
            ),
            result_row(
                "fonts embedded, none Type 3 (pdffonts)",
                fonts_ok,
                target="yes",
                met=fonts_ok,
                notes=f"{len(rare)} of {len(bulk_items)} with rare characters",
            ),
            result_row(
                f"memory, {args.long:,} certificates in one process: peak RSS",
                memory_in["peak_mb"],
                "MB",
                baseline=memory_naive["peak_mb"],
                baseline_label=f"naive loop, {max(100, args.long // 10):,} certificates",
                notes=f"growth over the last three quarters {growth} MB",
            ),
            result_row(
                f"memory, recycled every {args.recycle:,}: peak RSS of a child",
                memory_recycled["child_peak_mb"],
                "MB",
                notes=f"parent peak {memory_recycled['peak_mb']} MB, "
                f"{memory_recycled['children']} children",
            ),
            result_row(
                f"merged print file, {args.merged} certificates",
                round(merged_wall, 1),
                "s",
                notes=f"{kb(len(merged)):.0f} KB",
            ),
        ],
        title="Certificate PDFs (WeasyPrint)",
        notes=[
            f"font files {font_setup:.2f} s (cut once per machine); first certificate in a "
            f"fresh process {first:.2f} s"
        ],
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
