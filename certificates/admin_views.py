"""The admin views of certificates: templates (preview, scope, the default mark), the certificates
of a trainer's subtree (listing, revoke, re-issue) and "issue certificates now" per round.
certificates.wagtail_hooks wires them into viewsets.

Templates belong to the level that made them (members.access.may_change_content): a trainer
sees, previews and chooses the templates owned on the path from the top down to her, and below
her; she changes only those owned inside her subtree. Every view naming a template checks it.
"""

from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.http import Http404
from django.shortcuts import get_object_or_404, redirect
from django.urls import reverse
from django.utils.functional import cached_property
from django.utils.text import capfirst
from django.utils.translation import gettext, gettext_lazy
from django.utils.translation import gettext_lazy as _
from django.views.generic import TemplateView
from django_tasks import TaskResultStatus
from wagtail.admin.ui.tables import Column, TitleColumn
from wagtail.admin.views import generic
from wagtail.admin.views.generic.base import WagtailAdminTemplateMixin
from wagtail.admin.widgets.button import Button, HeaderButton
from wagtail.snippets.views import snippets as snippet_views

from core.audit import REFUSED, audit_event
from core.downloads import download_response
from members import access
from members.admin_views import ScopedMixin
from members.models import Member, Role, subtree_q
from rounds.admin_forms import round_editable, rounds_visible
from rounds.models import Participation

from . import services
from .admin_forms import RevokeForm, templates_usable
from .models import Certificate, CertificateTemplate
from .permissions import TEMPLATE_POLICY
from .tasks import certificates_issue_task

# --- Templates (a snippet) ----------------------------------------------------------------------


def preview_pdf(request, pk):
    """A sample certificate in this template, as the member would get it."""
    from .render import render_sample  # heavy: certificates.render loads WeasyPrint

    if not request.user.has_perm("certificates.view_certificatetemplate") and not (
        request.user.has_perm("certificates.change_certificatetemplate")
    ):
        raise Http404
    template = get_object_or_404(
        templates_usable(request.user).select_related("seal", "signature"), pk=pk
    )
    response = download_response(
        render_sample(template),
        filename=f"template-{template.pk}-preview.pdf",
        content_type="application/pdf",
        inline=True,
    )
    response["Cache-Control"] = "private, no-store"
    return response


class DefaultTemplateMixin:
    """Saving a template as the default of its kind takes the mark from the previous one."""

    def save_instance(self):
        with transaction.atomic():
            instance = self.form.instance
            if self.form.cleaned_data.get("is_default"):
                others = CertificateTemplate.objects.filter(kind=instance.kind, is_default=True)
                if instance.pk:
                    others = others.exclude(pk=instance.pk)
                others.update(is_default=False)
            return super().save_instance()


def _preview_button(url, priority=30):
    return Button(
        _("Preview PDF"),
        url=url,
        icon_name="view",
        priority=priority,
        attrs={"target": "_blank", "rel": "noopener"},
    )


class TemplateScopeMixin(ScopedMixin):
    """Every view naming a template (list, edit, delete, copy, history, usage) sees only those
    the trainer may use: another level's is a 404, as if it did not exist. Editing or deleting
    one she may only use is refused like any action she has no permission for."""

    def scope(self, queryset):
        condition = access.usable_content_q(self.request.user)
        return queryset if condition is None else queryset.filter(condition)

    def get_object(self, *args, **kwargs):
        # ScopedMixin's check, made first: out of scope is a 404 before anything else is asked
        # (the copy view asks permission), and the create view, which names none, passes.
        pk = self.kwargs.get(getattr(self, "pk_url_kwarg", "pk"))
        if pk is not None and not self.scope(self.model._default_manager.filter(pk=pk)).exists():
            raise Http404
        obj = super(ScopedMixin, self).get_object(*args, **kwargs)
        if isinstance(self, generic.EditView):
            action = "change"
        elif isinstance(self, generic.DeleteView):
            action = "delete"
        else:
            return obj
        if not TEMPLATE_POLICY.user_has_permission_for_instance(self.request.user, action, obj):
            raise PermissionDenied
        return obj


class TemplateChooserScopeMixin:
    """The template chooser lists, and answers for, only the templates the trainer may use;
    another level's is a 404 whatever the method."""

    def scoped(self, queryset):
        condition = access.usable_content_q(self.request.user)
        return queryset if condition is None else queryset.filter(condition)

    def dispatch(self, request, *args, **kwargs):
        if "pk" in kwargs:
            try:
                found = self.scoped(self.model_class.objects.filter(pk=kwargs["pk"])).exists()
            except (ValueError, TypeError):
                found = False
            if not found:
                raise Http404
        return super().dispatch(request, *args, **kwargs)

    def get_object_list(self):
        return self.scoped(super().get_object_list())

    def get_object(self, pk):
        return self.scoped(self.model_class.objects.all()).get(pk=pk)

    def get_objects(self, pks):
        return self.scoped(super().get_objects(pks))


def scoped_chooser(view_class):
    return type(view_class.__name__, (TemplateChooserScopeMixin, view_class), {})


class TemplateIndexView(snippet_views.IndexView):
    pdf_preview_url_name = None

    def get_base_queryset(self):
        return super().get_base_queryset().select_related("owner_organization")

    def get_edit_url(self, instance):
        if TEMPLATE_POLICY.user_has_permission_for_instance(self.request.user, "change", instance):
            return super().get_edit_url(instance)
        return None

    def get_delete_url(self, instance):
        if TEMPLATE_POLICY.user_has_permission_for_instance(self.request.user, "delete", instance):
            return super().get_delete_url(instance)
        return None

    def get_list_more_buttons(self, instance):
        buttons = super().get_list_more_buttons(instance)
        buttons.append(
            _preview_button(reverse(self.pdf_preview_url_name, args=[instance.pk]), priority=25)
        )
        return buttons


class TemplateCreateView(DefaultTemplateMixin, snippet_views.CreateView):
    pass


class TemplateCopyView(DefaultTemplateMixin, snippet_views.CopyView):
    """A copy of a template the trainer may use becomes her own: owned by her level (the form
    offers hers), and never the default until she says so."""

    def get_initial_form_instance(self):
        instance = super().get_initial_form_instance()
        instance.pk = instance.id = None
        instance.owner_organization = None
        instance.is_default = False
        return instance


class TemplateEditView(DefaultTemplateMixin, snippet_views.EditView):
    pdf_preview_url_name = None

    @cached_property
    def header_more_buttons(self):
        buttons = super().header_more_buttons
        buttons.append(_preview_button(reverse(self.pdf_preview_url_name, args=[self.object.pk])))
        return buttons


# --- Certificates of the trainer's subtree ------------------------------------------------------


def trainer_certificates(user):
    """The certificates of members in the trainer's subtree (all of them for a superuser)."""
    roots = access.role_roots(user, (Role.TRAINER,))
    certificates = Certificate.objects.all()
    if roots is not None:
        certificates = certificates.filter(subtree_q(roots, "member__organization__path"))
    return certificates


def can_manage_certificates(user) -> bool:
    return user.has_perm("certificates.change_certificate")


def certificate_for_action(request, pk) -> Certificate:
    """The certificate ``pk`` if the trainer may revoke or re-issue it; 404 otherwise."""
    if not can_manage_certificates(request.user):
        raise PermissionDenied
    certificate = (
        trainer_certificates(request.user).select_related("member", "round").filter(pk=pk).first()
    )
    if certificate is None:
        raise Http404
    return certificate


def certificate_buttons(user, certificate, *, priority=10):
    buttons = [
        Button(
            _("Download PDF"),
            url=reverse("certificates:pdf", args=[certificate.pk]),
            icon_name="download",
            priority=priority,
        )
    ]
    if certificate.is_valid and can_manage_certificates(user):
        buttons += [
            Button(
                _("Re-issue after a correction"),
                url=reverse("issued_certificates:reissue", args=[certificate.pk]),
                icon_name="resubmit",
                priority=priority + 1,
            ),
            Button(
                _("Revoke"),
                url=reverse("issued_certificates:revoke", args=[certificate.pk]),
                icon_name="cross",
                priority=priority + 2,
            ),
        ]
    return buttons


def certificate_subject(certificate) -> str:
    if certificate.kind == CertificateTemplate.Kind.HOURS:
        return gettext("Study-hours statement %(year)s") % {"year": certificate.year}
    return certificate.round_title


class CertificateIndexView(generic.IndexView):
    def get_base_queryset(self):
        return super().get_base_queryset().select_related("round")

    @cached_property
    def columns(self):
        return [
            self._get_title_column_class(TitleColumn)(
                "number",
                label=_("Certificate number"),
                get_url=lambda obj: self.get_inspect_url(obj),
                sort_key="number",
            ),
            Column("name", label=_("Name"), sort_key="name"),
            Column("organization_name", label=_("Organisation")),
            Column("subject", label=_("Round or year"), accessor=certificate_subject),
            Column("state", label=_("State"), accessor="get_state_display"),
            Column("issued_on", label=_("Issued on"), sort_key="issued_on"),
        ]

    def get_list_more_buttons(self, instance):
        return [
            *super().get_list_more_buttons(instance),
            *certificate_buttons(self.request.user, instance, priority=40),
        ]

    @cached_property
    def header_buttons(self):
        buttons = super().header_buttons
        if can_manage_certificates(self.request.user):
            buttons.append(
                HeaderButton(
                    _("Issue certificates"),
                    url=reverse("issued_certificates:issue"),
                    icon_name="doc-full-inverse",
                )
            )
        return buttons


class CertificateInspectView(generic.InspectView):
    def get_kind_display_value(self):
        return self.object.get_kind_display()

    def get_state_display_value(self):
        return self.object.get_state_display()

    @cached_property
    def header_more_buttons(self):
        return [
            *super().header_more_buttons,
            *certificate_buttons(self.request.user, self.object, priority=40),
        ]


class CertificateAdminView(WagtailAdminTemplateMixin, TemplateView):
    header_icon = "doc-full-inverse"

    def get_breadcrumbs_items(self):
        return [
            *self.breadcrumbs_items,
            {
                "url": reverse("issued_certificates:index"),
                "label": capfirst(Certificate._meta.verbose_name_plural),
            },
            {"url": "", "label": self.get_page_title()},
        ]


class CertificateActionView(CertificateAdminView):
    """Revoke or re-issue: only a valid certificate; a refused POST is on the audit record."""

    event = ""
    invalid_message = ""

    def dispatch(self, request, *args, **kwargs):
        self.certificate = certificate_for_action(request, kwargs["pk"])
        if not self.certificate.is_valid:
            error = str(self.invalid_message)
            if request.method == "POST":
                audit_event(
                    event=self.event,
                    obj=self.certificate,
                    request=request,
                    result=REFUSED,
                    error=error,
                    number=self.certificate.number,
                )
            messages.error(request, error)
            return redirect("issued_certificates:inspect", self.certificate.pk)
        return super().dispatch(request, *args, **kwargs)


class IssueRoundsView(CertificateAdminView):
    """The published and closed rounds a trainer sees, with how many certificates each has
    issued and how many are still due; "issue now" queues the issuing in the background."""

    template_name = "certificates/admin/issue.html"
    page_title = gettext_lazy("Issue certificates")

    def dispatch(self, request, *args, **kwargs):
        if not can_manage_certificates(request.user):
            raise PermissionDenied
        return super().dispatch(request, *args, **kwargs)

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        user = self.request.user
        rounds = (
            rounds_visible(user).published().prefetch_related("scope_roots").order_by("-opens_on")
        )
        rows = []
        for training_round in rounds[:40]:
            rows.append(
                {
                    "round": training_round,
                    "completed": Participation.objects.filter(
                        round=training_round, status=Participation.Status.COMPLETED
                    ).count(),
                    "issued": Certificate.objects.valid()
                    .filter(round=training_round, kind=CertificateTemplate.Kind.COMPLETION)
                    .count(),
                    "pending": services.certificates_pending_count(training_round=training_round),
                    "editable": round_editable(user, training_round),
                }
            )
        context["rows"] = rows
        return context

    def post(self, request, *args, **kwargs):
        wanted = request.POST.get("round", "")
        training_round = (
            rounds_visible(request.user).published().filter(pk=wanted).first()
            if wanted.isdigit()
            else None
        )
        if training_round is None or not round_editable(request.user, training_round):
            raise Http404
        audit_event(event="certificates_issue_requested", obj=training_round, request=request)
        result = certificates_issue_task.enqueue(training_round.pk, request.user.pk)
        if result.status == TaskResultStatus.SUCCESSFUL and result.return_value:
            messages.success(
                request,
                gettext("“%(round)s”: %(count)s certificates issued.")
                % {"round": training_round.title, "count": result.return_value["issued"]},
            )
        else:
            messages.info(
                request,
                gettext(
                    "“%(round)s”: certificates are being issued in the background; their PDFs "
                    "follow within a few minutes."
                )
                % {"round": training_round.title},
            )
        return redirect("issued_certificates:issue")


class RevokeView(CertificateActionView):
    template_name = "wagtailadmin/generic/form.html"
    page_title = gettext_lazy("Revoke certificate")
    event = "certificate_revoked"
    invalid_message = gettext_lazy("Only a valid certificate can be revoked.")

    def get_page_subtitle(self):
        return f"{self.certificate.number} · {self.certificate.name}"

    def get_context_data(self, form=None, **kwargs):
        context = super().get_context_data(**kwargs)
        context["form"] = form or RevokeForm()
        context["action_url"] = reverse("issued_certificates:revoke", args=[self.certificate.pk])
        context["submit_button_label"] = gettext("Revoke certificate")
        context["submit_button_active_label"] = gettext("Revoking…")
        context["media"] = context["form"].media
        return context

    def post(self, request, *args, **kwargs):
        form = RevokeForm(request.POST)
        if not form.is_valid():
            return self.render_to_response(self.get_context_data(form=form))
        services.certificate_revoke(
            certificate=self.certificate,
            reason=form.cleaned_data["reason"],
            user=request.user,
            request=request,
        )
        messages.success(
            request,
            gettext("Certificate %(number)s is revoked.") % {"number": self.certificate.number},
        )
        return redirect("issued_certificates:inspect", self.certificate.pk)


class ReissueView(CertificateActionView):
    template_name = "certificates/admin/reissue.html"
    page_title = gettext_lazy("Re-issue certificate")
    event = "certificate_reissued"
    invalid_message = gettext_lazy("Only a valid certificate can be re-issued.")

    def get_page_subtitle(self):
        return self.certificate.number

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        member = Member.objects.select_related("organization").get(pk=self.certificate.member_id)
        context["certificate"] = self.certificate
        context["member"] = member
        context["unchanged"] = (
            member.name == self.certificate.name
            and member.organization.name == self.certificate.organization_name
        )
        return context

    def post(self, request, *args, **kwargs):
        new = services.certificate_reissue(
            certificate=self.certificate, user=request.user, request=request
        )
        messages.success(
            request,
            gettext("Certificate %(new)s replaces %(old)s, which is kept on record as superseded.")
            % {"new": new.number, "old": self.certificate.number},
        )
        return redirect("issued_certificates:inspect", new.pk)
