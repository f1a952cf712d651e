"""Build the subtree rows of the rounds that exist already, from their counter rows.

Like 0014 this runs today's code (``rounds.counters.rollups_rebuild_all``); on an empty database
there is nothing to do. Where a later schema change makes that impossible, run
``manage.py coverage_counters --all --repair`` after migrating instead.
"""

from django.db import migrations


def build(apps, schema_editor):
    if not apps.get_model("rounds", "Round").objects.exists():
        return
    from rounds.counters import rollups_rebuild_all  # today's rules, see the docstring

    rollups_rebuild_all()


class Migration(migrations.Migration):
    dependencies = [("rounds", "0016_coverage_rollups")]

    operations = [migrations.RunPython(build, migrations.RunPython.noop)]
