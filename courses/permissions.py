"""Who may change a course in the Wagtail admin (DESIGN.md: content belongs to the level that
made it).

Trainers hold Wagtail's page permissions on the course centre (courses.signals). Those permissions
are narrowed per page here: a course names the organisation that owns it, its lessons belong to
it, and a trainer changes them (edit, publish, unpublish, delete, move, copy, lock, add or
reorder lessons) only when that owner lies inside one of her trainer subtrees. She still sees
them in the explorer, and uses their lessons in her rounds. The course centre itself belongs to
the top of the tree: any trainer adds her own courses under it, only a trainer at the top
changes it.

Every admin path (the page views, the actions, bulk actions, choosers and listing buttons) asks
``page.permissions_for_user``, which the three page models answer with ``OwnedPagePermissions``.
"""

from wagtail.models import PagePermissionTester

from members import access
from members.models import Organization

_CACHE = "_lunxun_course_owners"


def may_change_course(user, course_path: str) -> bool:
    """May ``user`` change the course at ``course_path`` (and its lessons)? The owners of all
    courses are read in one query, once per user object: an explorer listing asks for every
    row."""
    if not user.is_active:
        return False
    if user.is_superuser:
        return True
    cache = getattr(user, _CACHE, None)
    if cache is None or course_path not in cache:
        from .models import CoursePage  # cycle: courses.models imports courses.permissions

        cache = {
            path: access.may_change_content(user, _owner(owner_path))
            for path, owner_path in CoursePage.objects.values_list(
                "path", "owner_organization__path"
            )
        }
        setattr(user, _CACHE, cache)
    # A course that is not there (yet): the top's.
    return cache.get(course_path, access.may_change_content(user, None))


def _owner(path):
    """An organisation as far as the ownership rule reads it (its place in the tree)."""
    if path is None:
        return None
    return Organization(path=path, depth=len(path) // Organization.steplen)


class OwnedPagePermissions(PagePermissionTester):
    """Wagtail's page permissions, and ``may_change`` on top: without it nothing on this page
    changes; ``may_add`` says whether pages may be added (and published) below it."""

    def __init__(self, user, page, *, may_change: bool, may_add: bool | None = None):
        super().__init__(user, page)
        self.may_change = may_change
        self.may_add = may_change if may_add is None else may_add

    def can_edit(self):
        return self.may_change and super().can_edit()

    def can_delete(self, ignore_bulk=False):
        return self.may_change and super().can_delete(ignore_bulk=ignore_bulk)

    def can_publish(self):
        return self.may_change and super().can_publish()

    def can_unpublish(self):
        return self.may_change and super().can_unpublish()

    def can_submit_for_moderation(self):
        return self.may_change and super().can_submit_for_moderation()

    def can_lock(self):
        return self.may_change and super().can_lock()

    def can_unlock(self):
        return self.user_has_lock() or (self.may_change and super().can_unlock())

    def can_reorder_children(self):
        return self.may_change and super().can_reorder_children()

    def can_add_subpage(self):
        return self.may_add and super().can_add_subpage()

    def can_publish_subpage(self):
        return self.may_add and super().can_publish_subpage()

    def can_move_to(self, destination):
        # Wagtail reads the destination's raw permissions here: ask it properly, so that a
        # lesson is never moved into a course its trainer may not change.
        if not super().can_move_to(destination):
            return False
        return (
            self.user.is_superuser or destination.permissions_for_user(self.user).can_add_subpage()
        )
