from django.db import migrations, models


def end_open_viewings(apps, schema_editor):
    """Viewings opened before this migration are bound to no session and may be several per
    member: they end here. A player left open is told to reload and starts a new viewing."""
    LessonProgress = apps.get_model("courses", "LessonProgress")
    LessonProgress.objects.filter(viewing__isnull=False).update(viewing=None)


class Migration(migrations.Migration):
    dependencies = [
        ("courses", "0004_create_course_index"),
    ]

    operations = [
        migrations.RunPython(end_open_viewings, migrations.RunPython.noop, elidable=True),
        migrations.RemoveField(
            model_name="lessonprogress",
            name="base_segments",
        ),
        migrations.AddField(
            model_name="lessonprogress",
            name="credited_until",
            field=models.DateTimeField(blank=True, null=True),
        ),
        migrations.AddField(
            model_name="lessonprogress",
            name="viewing_session",
            field=models.CharField(blank=True, max_length=40),
        ),
        migrations.AddConstraint(
            model_name="lessonprogress",
            constraint=models.UniqueConstraint(
                condition=models.Q(("viewing__isnull", False)),
                fields=("member",),
                name="one_open_viewing_per_member",
            ),
        ),
    ]
