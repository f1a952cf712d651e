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
