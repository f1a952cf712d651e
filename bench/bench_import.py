"""Importing a 10,000-row roster .xlsx: dry run then apply (target: under 20 s in all).

The file is written by openpyxl with the mess real files have (spaces, +86, text dates).
Baseline, measured in the same run: re-importing the same file (all rows unchanged) and
a one-row-at-a-time import through member_create on a sample, extrapolated.

    .venv/bin/python bench/bench_import.py [--rows 10000] [--city 20000]
"""

import argparse
import io
import sys

from _setup import django_with_fresh_db, machine, result_row, timed, write_results

TARGET_SECONDS = 20


def roster_xlsx(rows, branch_codes) -> bytes:
    from openpyxl import Workbook

    workbook = Workbook()
    sheet = workbook.active
    sheet.append(
        [
            "序号",
            "姓名",
            "性别",
            "手机号码",
            "党组织编码",
            "党员状态",
            "人员类别",
            "入党日期",
            "备注",
        ]
    )
    for i in range(rows):
        sheet.append(
            [
                i + 1,
                f"王 {i % 97}号" if i % 5 else "𠮷祥",
                "男" if i % 2 else "女",
                f"+86 177 {i // 10000:04d} {i % 10000:04d}" if i % 3 else f"177{i:08d}",
                branch_codes[i % len(branch_codes)],
                "预备党员" if i % 20 == 0 else "正式党员",
                "普通党员",
                f"20{i % 20:02d}年{i % 12 + 1}月{i % 28 + 1}日",
                "",
            ]
        )
    buffer = io.BytesIO()
    workbook.save(buffer)
    return buffer.getvalue()


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=10_000)
    parser.add_argument("--city", type=int, default=20_000, help="members already on record")
    parser.add_argument("--baseline-sample", type=int, default=1000)
    args = parser.parse_args()
    django_with_fresh_db("import")

    from django.core.management import call_command
    from django.db import transaction

    from members import importing, services
    from members.models import Member, Organization

    call_command("seed_demo", "--members", str(args.city), stdout=io.StringIO())
    codes = list(
        Organization.objects.filter(kind="branch").order_by("path").values_list("code", flat=True)
    )
    data = roster_xlsx(args.rows, codes)
    results = {}
    with timed(results, "check"):
        record = importing.roster_check(data=data, file_name="roster.xlsx")
    assert not record.report["errors"], record.report["errors"][:3]
    with timed(results, "apply"):
        importing.roster_apply(spreadsheet_import=record)
    assert Member.objects.count() == args.city + args.rows
    with timed(results, "recheck"):
        again = importing.roster_check(data=data, file_name="roster.xlsx")
    assert again.report["counts"]["unchanged"] == args.rows
    branch = Organization.objects.get(code=codes[0])
    with timed(results, "baseline"), transaction.atomic():
        for i in range(args.baseline_sample):
            services.member_create(name="基线", phone=f"166{i:08d}", organization=branch)
    per_row = results["baseline"] / args.baseline_sample
    total = results["check"] + results["apply"]

    print(f"bench_import  machine: {machine()}")
    print(
        f"  {args.rows:,}-row .xlsx ({len(data) / 1024:.0f} KB) into a city of "
        f"{args.city:,} members"
    )
    print(f"  dry run (parse + check): {results['check']:.2f} s")
    print(f"  apply (all-or-nothing) : {results['apply']:.2f} s")
    print(
        f"  total                  : {total:.2f} s  (target < {TARGET_SECONDS} s -> "
        f"{'met' if total < TARGET_SECONDS else 'NOT met'})"
    )
    print(f"  baseline: same file again, all unchanged: {results['recheck']:.2f} s dry run")
    print(
        f"  baseline: row-by-row member_create {per_row * 1000:.2f} ms/row -> "
        f"{per_row * args.rows:.1f} s for {args.rows:,} rows (no checks, no report)"
    )
    write_results(
        "import",
        [
            result_row(
                f"{args.rows:,}-row .xlsx: dry run + apply",
                round(total, 2),
                "s",
                baseline=round(per_row * args.rows, 1),
                baseline_label="row-by-row member_create, no checks or report, extrapolated "
                f"from {args.baseline_sample:,}",
                target=f"< {TARGET_SECONDS} s",
                met=total < TARGET_SECONDS,
            ),
            result_row(
                "dry run (parse + check)",
                round(results["check"], 2),
                "s",
                baseline=round(results["recheck"], 2),
                baseline_label="the same file again, every row unchanged",
            ),
            result_row("apply (all-or-nothing)", round(results["apply"], 2), "s"),
        ],
        title=f"Roster import ({args.rows:,} rows into a city of {args.city:,})",
        data=f"{args.rows:,}-row .xlsx ({len(data) / 1024:.0f} KB) into a city of "
        f"{args.city:,} members; {machine()}",
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
