"""Admin views of ours that stand in for Wagtail's where its scope is wider than a trainer's."""

from django.http import Http404
from wagtail.admin.views.reports.audit_logging import LogEntriesView

from . import access
from .models import Role


class SiteHistoryView(LogEntriesView):
    """Wagtail's site history, for those whose scope is the whole tree.

    It lists every change made anywhere (names, role grants, rounds) with who made it; a county
    trainer sees each object's own history inside her subtree instead, never the city's log.
    """

    def dispatch(self, request, *args, **kwargs):
        if not access.covers_whole_tree(request.user, (Role.TRAINER,)):
            raise Http404
        return super().dispatch(request, *args, **kwargs)
