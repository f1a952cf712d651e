"""Queued background work names its task by dotted path (django-tasks' database backend keeps it
in each row): the tasks of courses were renamed <service>_task, so work queued before the rename,
such as the daily reminder run that books itself a day ahead, is pointed at the new names.
Finished rows keep the path they ran under."""

from django.db import migrations

RENAMED = {
    "courses.tasks.transcode_video": "courses.tasks.video_process_task",
}
QUEUED = "READY"


def rename(apps, renamed):
    DBTaskResult = apps.get_model("django_tasks_database", "DBTaskResult")
    for old, new in renamed.items():
        DBTaskResult.objects.filter(task_path=old, status=QUEUED).update(task_path=new)


def forwards(apps, schema_editor):
    rename(apps, RENAMED)


def backwards(apps, schema_editor):
    rename(apps, {new: old for old, new in RENAMED.items()})


class Migration(migrations.Migration):
    dependencies = [
        ("courses", "0006_course_owner"),
        ("django_tasks_database", "0021_conditional_partial_index_ordering"),
    ]

    operations = [migrations.RunPython(forwards, backwards)]
