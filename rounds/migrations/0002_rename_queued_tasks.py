"""Queued background work names its task by dotted path (django-tasks' database backend keeps it
in each row): the tasks of rounds were renamed <service>_task, so work queued before the rename,
such as the daily reminder run that books itself a day ahead, is pointed at the new names.
Finished rows keep the path they ran under."""

from django.db import migrations

RENAMED = {
    "rounds.tasks.send_reminders_task": "rounds.tasks.reminders_send_deferred_task",
    "rounds.tasks.daily_reminders_task": "rounds.tasks.reminders_daily_task",
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
        ("rounds", "0001_initial"),
        ("django_tasks_database", "0021_conditional_partial_index_ordering"),
    ]

    operations = [migrations.RunPython(forwards, backwards)]
