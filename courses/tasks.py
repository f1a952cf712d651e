"""Background work for courses: processing an uploaded video.

Tasks import their services inside the function: the services import this module at the top to
enqueue, so a top-level import here would be a cycle (courses.services imports courses.tasks).
"""

from django_tasks import task


@task()
def video_process_task(video_id: int):
    """Probe and transcode one uploaded video into the HLS ladder (see courses.services)."""
    from .services import video_process

    video_process(video_id=video_id)


@task()
def live_recording_process_task(stream_id: int):
    """A live lecture has ended: its recording becomes the lesson's video."""
    from .services import live_recording_process

    live_recording_process(stream_id=stream_id)


@task()
def live_expire_task(stream_id: int):
    """The grace period after a push went has passed: end the lecture if it did not resume."""
    from .services import live_expire

    live_expire(stream_id=stream_id)
