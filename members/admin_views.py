"""The admin views of members: every view scoped to the trainer's subtree (ScopedMixin, which
the other apps' viewsets use too), the organisation and member forms' saving, and views of ours
that stand in for Wagtail's where its scope is wider than a trainer's."""

from django.db import transaction
from django.http import Http404
from wagtail.admin.views import generic
from wagtail.admin.views.generic.base import BaseListingView
from wagtail.admin.views.reports.audit_logging import LogEntriesView
from wagtail.admin.viewsets.model import ModelViewSet

from . import access, services
from .importing import roster_changed
from .models import Organization, Role, subtree_q


class SiteHistoryView(LogEntriesView):
    """Wagtail's site history, for those whose scope is the whole tree.

    It lists every change made anywhere (names, role grants, rounds) with who made it; a county
    trainer sees each object's own history inside her subtree instead, never the city's log.
    """

    def dispatch(self, request, *args, **kwargs):
        if not access.covers_whole_tree(request.user, (Role.TRAINER,)):
            raise Http404
        return super().dispatch(request, *args, **kwargs)


class ScopedMixin:
    """Every admin view, list or single object, sees only the trainer's subtree."""

    path_lookup = "path"

    def scope(self, queryset):
        roots = access.role_roots(self.request.user, (Role.TRAINER,))
        if roots is None:
            return queryset
        return queryset.filter(subtree_q(roots, self.path_lookup))

    def get_base_queryset(self):
        queryset = super().get_base_queryset()
        # History and usage pages list log entries or references of the one object.
        return self.scope(queryset) if queryset.model is self.model else queryset

    def get_queryset(self):
        if isinstance(self, BaseListingView):  # index, history and usage listings
            return super().get_queryset()
        return self.scope(self.model._default_manager.all())

    def get_object(self, *args, **kwargs):
        obj = super().get_object(*args, **kwargs)
        if not self.scope(self.model._default_manager.filter(pk=obj.pk)).exists():
            raise Http404
        return obj


class ScopedModelViewSet(ModelViewSet):
    """A ModelViewSet whose every view is limited to the trainer's subtree."""

    path_lookup = "path"

    def construct_view(self, view_class, **kwargs):
        scoped = type(
            view_class.__name__, (ScopedMixin, view_class), {"path_lookup": self.path_lookup}
        )
        return super().construct_view(scoped, **kwargs)


class OrganizationCreateView(generic.CreateView):
    def save_instance(self):
        parent = self.form.cleaned_data.get("parent")
        instance = self.form.instance
        values = {f: getattr(instance, f) for f in ("name", "code", "kind", "domain", "is_site")}
        if parent is None:
            return Organization.add_root(**values)
        return parent.add_child(**values)


class OrganizationEditView(generic.EditView):
    def save_instance(self):
        with transaction.atomic():
            instance = self.form.save()
            parent = self.form.cleaned_data.get("parent")
            current = instance.get_parent()
            if parent is not None and (current is None or current.pk != parent.pk):
                instance.move(parent, "sorted-child")
                instance.refresh_from_db()
                roster_changed.send(sender=Organization, organization_ids=None)
        return instance


class MemberCreateView(generic.CreateView):
    def save_instance(self):
        data = self.form.cleaned_data
        return services.member_create(
            name=data["name"],
            phone=data["phone"],
            organization=data["organization"],
            status=data["status"],
            position=data["position"],
            gender=data["gender"],
            joined_on=data["joined_on"],
            is_active=data["is_active"],
            position_since=data["position_since"],
            activity_organization=data["activity_organization"],
            is_retired=data["is_retired"],
            limited_mobility=data["limited_mobility"],
        )


class PostingCreateView(generic.CreateView):
    def save_instance(self):
        instance = self.form.save(commit=False)
        instance.created_by = self.request.user
        instance.save()
        return instance
