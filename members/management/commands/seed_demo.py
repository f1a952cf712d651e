import time

from django.core.management.base import BaseCommand

from core.planner import planner_statistics_refresh
from members.demo import demo_city_seeded, seed_demo_city, seed_scale_city


class Command(BaseCommand):
    help = (
        "Load the demo city (idempotent). With --members N, also build a city of N members "
        "in about N/20 organisations for benchmarks."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--members", type=int, default=0, help="build a scale city with this many members"
        )

    def handle(self, *args, members=0, **options):
        started = time.perf_counter()
        if members:
            result = seed_scale_city(members, stdout=self.stdout)
            if result["created"]:
                self.stdout.write(
                    f"Scale city: {result['organizations']} organisations, "
                    f"{result['members']} members in {time.perf_counter() - started:.1f} s"
                )
                planner_statistics_refresh()
            else:
                self.stdout.write("Scale city already present; nothing changed.")
            return
        logins = seed_demo_city()
        self.stdout.write(self.style.SUCCESS("Demo city ready. Logins:"))
        for login in logins:
            self.stdout.write(
                f"  {login.role:<17} {login.login:<13} {login.password}   ({login.scope})"
            )
        # Apps above members (courses, rounds, …) add their demo data on this signal.
        for _receiver, message in demo_city_seeded.send(sender=self.__class__):
            if message:
                self.stdout.write(str(message))
        planner_statistics_refresh()  # the demo is a bulk load (core/planner.py)
