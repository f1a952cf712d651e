"""The daily reminder chain on RQ: booked once, whatever how often a deployment asks."""

import django_rq
import pytest
from django_tasks import task_backends

from rounds.tasks import next_daily_run, reminders_daily_ensure_scheduled, reminders_daily_task

pytestmark = pytest.mark.scale


@pytest.fixture
def rq_backend(settings):
    settings.TASKS = {"default": {"BACKEND": "django_tasks_rq.RQBackend", "QUEUES": ["default"]}}
    queue = django_rq.get_queue("default")
    queue.connection.flushdb()
    yield queue
    queue.connection.flushdb()


def scheduled_jobs(queue):
    ids = queue.scheduled_job_registry.get_job_ids()
    return [job for job in queue.job_class.fetch_many(ids, connection=queue.connection) if job]


def test_daily_run_is_booked_once_on_rq(rq_backend):
    assert type(task_backends["default"]).__name__ == "RQBackend"
    first = reminders_daily_ensure_scheduled()
    assert first is not None
    again = reminders_daily_ensure_scheduled()
    assert again is None
    jobs = scheduled_jobs(rq_backend)
    assert [job.func_name for job in jobs] == [reminders_daily_task.module_path]
    when = rq_backend.scheduled_job_registry.get_scheduled_time(jobs[0])
    assert when == next_daily_run().replace(microsecond=0).astimezone(when.tzinfo)


def test_a_run_already_queued_counts_as_booked(rq_backend):
    reminders_daily_task.enqueue()
    assert reminders_daily_ensure_scheduled() is None
