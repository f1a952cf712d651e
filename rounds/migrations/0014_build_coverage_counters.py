"""Build the coverage counters of the rounds that exist already.

Who is in scope is decided by ``Round``'s own methods, so this runs today's code
(``rounds.counters.counters_rebuild_all``) rather than the historical models; on an empty
database there is nothing to do. Where a later schema change makes that impossible, run
``manage.py coverage_counters --all --repair`` after migrating instead.
"""

from django.db import migrations


def build(apps, schema_editor):
    if not apps.get_model("rounds", "Round").objects.exists():
        return
    from rounds.counters import counters_rebuild_all  # today's scope rules, see the docstring

    counters_rebuild_all(subtree=False)  # the subtree rows are built by 0017


class Migration(migrations.Migration):
    dependencies = [("rounds", "0013_coverage_counters")]

    operations = [migrations.RunPython(build, migrations.RunPython.noop)]
