from django.contrib.auth.models import Permission
from django.dispatch import receiver
from wagtail.models import Collection, GroupCollectionPermission, GroupPagePermission

from members.demo import demo_city_seeded
from members.services import trainer_group_ready

from . import demo
from .models import CourseIndexPage

COLLECTION_PERMISSIONS = {
    "wagtailmedia": ("add_media", "change_media", "delete_media"),
    "wagtailimages": ("add_image", "change_image", "choose_image"),
    "wagtaildocs": ("add_document", "change_document", "choose_document"),
}
PAGE_PERMISSIONS = ("add_page", "change_page", "publish_page", "lock_page", "unlock_page")


@receiver(trainer_group_ready)
def grant_course_permissions(sender, group, **kwargs):
    """Trainers publish courses: pages under the course centre, videos, images, documents.

    The page permissions are granted on the course centre, for every course under it; each
    course narrows them to the trainers of the level that owns it (courses.permissions), so a
    county's trainer adds and changes her own courses and only uses the city's."""
    group.permissions.add(
        *Permission.objects.filter(
            content_type__app_label="courses", codename__in=["add_topic", "change_topic"]
        )
    )
    root = Collection.get_first_root_node()
    if root is not None:
        for app_label, codenames in COLLECTION_PERMISSIONS.items():
            for permission in Permission.objects.filter(
                content_type__app_label=app_label, codename__in=codenames
            ):
                GroupCollectionPermission.objects.get_or_create(
                    group=group, collection=root, permission=permission
                )
    course_index = CourseIndexPage.objects.first()
    if course_index is not None:
        for permission in Permission.objects.filter(
            content_type__app_label="wagtailcore", codename__in=PAGE_PERMISSIONS
        ):
            GroupPagePermission.objects.get_or_create(
                group=group, page=course_index, permission=permission
            )


@receiver(demo_city_seeded)
def seed_demo_course(sender, **kwargs):
    index = demo.seed_demo_course()
    pending = demo.demo_videos_pending()
    line = f"Demo course ready at {index.url}"
    if pending:
        line += f" ({pending} videos queued; the worker transcodes them in a minute or two)"
    return line
