"""A course names the organisation that owns it (DESIGN.md: content belongs to the level that
made it). The courses there are were made by the city: they become the first root's."""

import django.db.models.deletion
from django.db import migrations, models


def courses_are_the_citys(apps, schema_editor):
    Organization = apps.get_model("members", "Organization")
    CoursePage = apps.get_model("courses", "CoursePage")
    db = schema_editor.connection.alias
    city = Organization.objects.using(db).filter(depth=1).order_by("path").first()
    if city is not None:
        CoursePage.objects.using(db).filter(owner_organization=None).update(
            owner_organization=city
        )


class Migration(migrations.Migration):

    dependencies = [
        ("courses", "0005_one_viewing_per_member"),
        ("members", "0002_audit_immutable"),
    ]

    operations = [
        migrations.AddField(
            model_name="coursepage",
            name="owner_organization",
            field=models.ForeignKey(
                blank=True,
                help_text="Its trainers (and those above) may change this course and its lessons; every other trainer uses it as it is.",
                null=True,
                on_delete=django.db.models.deletion.SET_NULL,
                related_name="+",
                to="members.organization",
                verbose_name="owned by",
            ),
        ),
        migrations.RunPython(courses_are_the_citys, migrations.RunPython.noop),
    ]
