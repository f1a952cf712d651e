"""Work queued under a task's old name runs under its new one after the upgrade.

The database backend keeps each queued task's dotted path; the tasks were renamed
``<service>_task``, and a migration in the app owning each task rewrites the path of the rows
still waiting (the daily reminder run books itself a day ahead, so a running site always has one).
"""

import importlib

import pytest
from django.apps import apps
from django.utils import timezone
from django.utils.module_loading import import_string
from django_tasks import TaskResultStatus
from django_tasks.base import Task
from django_tasks_db.models import DBTaskResult

MIGRATIONS = [
    ("courses", "0007_rename_queued_tasks"),
    ("rounds", "0002_rename_queued_tasks"),
]


def _row(path, status):
    return DBTaskResult.objects.create(
        task_path=path,
        status=status,
        args_kwargs={"args": [], "kwargs": {}},
        backend_name="default",
        run_after=timezone.now(),
        exception_class_path="",
        traceback="",
    )


@pytest.mark.django_db
@pytest.mark.parametrize(("app", "name"), MIGRATIONS)
def test_queued_work_is_pointed_at_the_renamed_task_and_finished_work_keeps_its_path(app, name):
    migration = importlib.import_module(f"{app}.migrations.{name}")
    rows = [
        (old, new, _row(old, TaskResultStatus.READY), _row(old, TaskResultStatus.SUCCESSFUL))
        for old, new in migration.RENAMED.items()
    ]

    migration.forwards(apps, None)

    for old, new, queued, finished in rows:
        queued.refresh_from_db()
        finished.refresh_from_db()
        assert queued.task_path == new
        assert finished.task_path == old
        task = import_string(new)
        assert isinstance(task, Task)
        assert task.module_path == new

    migration.backwards(apps, None)

    for old, _new, queued, _finished in rows:
        queued.refresh_from_db()
        assert queued.task_path == old
