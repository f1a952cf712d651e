"""Trainers manage organisations, members and roles in the Wagtail admin, within their subtree.

This module only registers: the views are in members.admin_views."""

from auditlog.models import LogEntry
from django.contrib import messages
from django.contrib.auth import get_user_model
from django.shortcuts import redirect
from django.urls import reverse
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext
from wagtail import hooks
from wagtail.admin.menu import MenuItem
from wagtail.admin.viewsets.model import ModelViewSetGroup

from . import access
from .admin_forms import MemberForm, OrganizationForm, PostingForm, RoleAssignmentForm
from .admin_views import (
    MemberCreateView,
    OrganizationCreateView,
    OrganizationEditView,
    PostingCreateView,
    ScopedModelViewSet,
)
from .models import Member, Organization, Posting, Role, RoleAssignment


class OrganizationViewSet(ScopedModelViewSet):
    model = Organization
    add_view_class = OrganizationCreateView
    edit_view_class = OrganizationEditView
    icon = "group"
    menu_label = _("Organisations")
    list_display = ["name", "code", "kind", "domain", "is_site"]
    list_filter = ["kind", "domain", "is_site"]
    search_fields = ["name", "code"]
    ordering = ["path"]

    def get_form_class(self, for_update=False):
        return OrganizationForm


class MemberViewSet(ScopedModelViewSet):
    path_lookup = "organization__path"
    add_view_class = MemberCreateView
    model = Member
    icon = "user"
    menu_label = _("Members")
    list_display = ["name", "masked_phone", "organization", "status", "position", "is_active"]
    list_filter = ["status", "position", "is_active"]
    search_fields = ["name", "phone"]
    ordering = ["organization__path", "name"]

    def get_form_class(self, for_update=False):
        return MemberForm


class PostingViewSet(ScopedModelViewSet):
    """Postings into the trainer's subtree (第一书记…): who is in its training scope as well."""

    path_lookup = "organization__path"
    model = Posting
    add_view_class = PostingCreateView
    icon = "user"
    menu_label = _("Postings (派驻)")
    list_display = ["member", "title", "organization", "position", "starts_on", "ends_on"]
    list_filter = ["position"]
    search_fields = ["member__name", "title", "organization__name"]
    ordering = ["organization__path", "-starts_on"]

    def get_form_class(self, for_update=False):
        return PostingForm


class RoleAssignmentViewSet(ScopedModelViewSet):
    path_lookup = "organization__path"
    model = RoleAssignment
    icon = "key"
    menu_label = _("Roles")
    list_display = ["user", "role", "organization", "created_at"]
    list_filter = ["role"]
    search_fields = ["user__username", "organization__name", "organization__code"]
    ordering = ["organization__path"]

    def get_form_class(self, for_update=False):
        return RoleAssignmentForm


class MembersGroup(ModelViewSetGroup):
    menu_label = _("Organisations and members")
    menu_icon = "group"
    menu_order = 200
    items = (
        OrganizationViewSet("org_tree"),
        MemberViewSet("party_members"),
        PostingViewSet("postings"),
        RoleAssignmentViewSet("org_roles"),
    )


@hooks.register("register_admin_viewset")
def register_viewset():
    return MembersGroup()


@hooks.register("register_admin_menu_item")
def register_import_menu_item():
    class ImportMenuItem(MenuItem):
        def is_shown(self, request):
            return access.has_role(request.user, (Role.TRAINER,))

    return ImportMenuItem(
        _("Import organisations"),
        reverse("members:import_upload", args=["organizations"]),
        icon_name="upload",
        order=210,
    )


@hooks.register("construct_reports_menu")
def hide_site_history_from_scoped_trainers(request, menu_items):
    """Site history lists changes city-wide; members.admin_views.SiteHistoryView guards its URL."""
    if not access.covers_whole_tree(request.user, (Role.TRAINER,)):
        menu_items[:] = [item for item in menu_items if item.name != "site-history"]


# --- Accounts that appear in the audit log are deactivated, never deleted ----------------------


def _audited(users) -> list:
    ids = [user.pk for user in users]
    return list(
        get_user_model().objects.filter(
            pk__in=LogEntry.objects.filter(actor_id__in=ids).values("actor_id")
        )
    )


def _refuse_deleting(request, users):
    messages.error(
        request,
        ngettext(
            "%(names)s appears in the audit log, so the account cannot be deleted: the log must "
            "keep saying who did what. Deactivate it instead (untick “active”).",
            "%(names)s appear in the audit log, so these accounts cannot be deleted: the log "
            "must keep saying who did what. Deactivate them instead (untick “active”).",
            len(users),
        )
        % {"names": "、".join(str(user) for user in users)},
    )
    return redirect("wagtailusers_users:index")


@hooks.register("before_delete_user")
def keep_audited_account(request, user):
    audited = _audited([user])
    if audited:
        return _refuse_deleting(request, audited)
    return None


@hooks.register("before_bulk_action")
def keep_audited_accounts(request, action_type, objects, action_class_instance):
    if action_type != "delete" or getattr(action_class_instance, "model", None) is not (
        get_user_model()
    ):
        return None
    audited = _audited(objects)
    if audited:
        return _refuse_deleting(request, audited)
    return None
