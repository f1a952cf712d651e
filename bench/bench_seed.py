"""Seeding the scale city: 300,000 members in ~15,000 organisations (target: under 120 s).

Baseline, measured in the same run: creating members one by one through the service the
admin uses (members.services.member_create), on a sample, extrapolated to the same count.

    .venv/bin/python bench/bench_seed.py [--members 300000] [--baseline-sample 2000]
"""

import argparse
import sys

from _setup import django_with_fresh_db, machine, result_row, timed, write_results

TARGET_SECONDS = 120


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--members", type=int, default=300_000)
    parser.add_argument("--baseline-sample", type=int, default=2000)
    args = parser.parse_args()
    django_with_fresh_db("seed")

    from django.core.management import call_command
    from django.db import transaction

    from members.models import Member, Organization
    from members.services import member_create

    results = {}
    with timed(results, "bulk"):
        call_command("seed_demo", "--members", str(args.members), stdout=open("/dev/null", "w"))
    organizations = Organization.objects.count()
    members = Member.objects.count()
    assert members == args.members, members
    problems = Organization.find_problems()
    assert problems == ([], [], [], [], []), problems

    branch = Organization.objects.filter(kind="branch").first()
    with timed(results, "baseline"), transaction.atomic():
        for i in range(args.baseline_sample):
            member_create(name="基线", phone=f"166{i:08d}", organization=branch)
    per_member = results["baseline"] / args.baseline_sample

    print(f"bench_seed  machine: {machine()}")
    print(
        f"  scale seed: {members:,} members in {organizations:,} organisations "
        f"in {results['bulk']:.1f} s ({members / results['bulk']:,.0f} members/s)"
    )
    print(
        f"  baseline  : one-by-one member_create, {per_member * 1000:.2f} ms/member "
        f"(sample of {args.baseline_sample:,}) -> {per_member * members:.0f} s for "
        f"{members:,}"
    )
    met = results["bulk"] < TARGET_SECONDS
    print(f"  target    : < {TARGET_SECONDS} s -> {'met' if met else 'NOT met'}")
    baseline_label = (
        f"one-by-one member_create, {per_member * 1000:.2f} ms/member on a sample of "
        f"{args.baseline_sample:,}, extrapolated"
    )
    write_results(
        "seed",
        [
            result_row(
                f"scale seed: {members:,} members in {organizations:,} organisations",
                round(results["bulk"], 1),
                "s",
                baseline=round(per_member * members),
                baseline_label=baseline_label,
                target=f"< {TARGET_SECONDS} s",
                met=met,
            ),
            result_row(
                "members created per second",
                round(members / results["bulk"]),
                "members/s",
                baseline=round(1 / per_member),
                baseline_label="one-by-one member_create",
            ),
        ],
        title=f"Seeding the scale city ({members:,} members)",
        data=f"{members:,} members in {organizations:,} organisations; {machine()}",
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
