from django_tasks import task


@task()
def transcode_video(video_id: int):
    """Probe and transcode one uploaded video into the HLS ladder (see courses.services)."""
    from .services import video_process

    video_process(video_id=video_id)
