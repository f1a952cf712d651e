"""Background work for rounds: deferred reminders and the daily reminder run.

The daily task schedules its own next run, so the embedded default (database backend and its
worker) needs no cron: ``manage.py send_reminders --schedule`` starts the chain once, and
running it again does not start a second one.

Tasks import their services inside the function: the services import this module at the top to
enqueue, so a top-level import here would be a cycle (rounds.reminders imports rounds.tasks).
"""

from datetime import datetime, time, timedelta

import django_rq
from django.contrib.auth import get_user_model
from django.utils import timezone
from django_tasks import TaskResultStatus, task
from django_tasks_db.backend import DatabaseBackend
from django_tasks_db.models import DBTaskResult
from django_tasks_rq import RQBackend

from .models import Round

DAILY_RUN_HOUR = 9  # local time: well after quiet hours, when secretaries are at work


@task()
def reminders_send_deferred_task(round_id: int, node_id: int, user_id: int):
    """A secretary's reminders, asked for in quiet hours, sent when they end."""
    from .reminders import reminders_send_deferred

    result = reminders_send_deferred(round_id=round_id, node_id=node_id, user_id=user_id)
    return result.as_dict() if result else None


@task()
def round_close_task(round_id: int, user_id: int | None = None):
    """Close a round: refresh every member's status, then freeze the figures of every node."""
    from .services import round_close

    training_round = Round.objects.filter(pk=round_id).first()
    if training_round is None:
        return None
    user = get_user_model().objects.filter(pk=user_id).first() if user_id else None
    closed = round_close(training_round=training_round, user=user)
    return {"round": closed.pk, "state": closed.state, "snapshots": closed.snapshots.count()}


@task()
def reminders_daily_task():
    """Close rounds past their date, send automatic reminders and digests; then book tomorrow."""
    from .reminders import reminders_daily

    summary = reminders_daily()
    reminders_daily_ensure_scheduled()
    return summary


def next_daily_run(now: datetime | None = None) -> datetime:
    """The next ``DAILY_RUN_HOUR`` o'clock, local time, strictly after ``now``."""
    local = timezone.localtime(now)
    day = local.date() if local.hour < DAILY_RUN_HOUR else local.date() + timedelta(days=1)
    return timezone.make_aware(datetime.combine(day, time(DAILY_RUN_HOUR)))


def reminders_daily_pending() -> bool:
    """True when the queue holds a daily run that has not started yet.

    The database backend (embedded default) and RQ (scale profile) are asked directly; on
    any other backend nothing can be seen and this says False.
    """
    backend = reminders_daily_task.get_backend()
    path = reminders_daily_task.module_path
    if isinstance(backend, DatabaseBackend):
        return DBTaskResult.objects.filter(
            task_path=path, status=TaskResultStatus.READY, backend_name=backend.alias
        ).exists()
    if isinstance(backend, RQBackend):
        queue = django_rq.get_queue(reminders_daily_task.queue_name)
        waiting = queue.scheduled_job_registry.get_job_ids() + queue.get_job_ids()
        return any(
            job is not None and job.func_name == path
            for job in queue.job_class.fetch_many(waiting, connection=queue.connection)
        )
    return False


def reminders_daily_ensure_scheduled(*, now: datetime | None = None):
    """Enqueue the next daily run unless one is already waiting; returns the new task result.

    Only a backend that can defer work can hold tomorrow's run (the immediate backend of the
    unit tests cannot, and would otherwise run the chain forever). Pending runs are visible
    on the database and RQ backends; on another backend call this once per deployment.
    """
    if not reminders_daily_task.get_backend().supports_defer:
        return None
    if reminders_daily_pending():
        return None
    return reminders_daily_task.using(run_after=next_daily_run(now)).enqueue()
