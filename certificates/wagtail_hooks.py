"""Trainers in the Wagtail admin: certificate templates (a snippet, with a PDF preview), the
certificates of their subtree (revoke, re-issue) and "issue certificates now" per round.

This module only registers: the views are in certificates.admin_views, the permission policies
in certificates.permissions.
"""

from django.urls import path
from django.utils.translation import gettext_lazy as _
from wagtail import hooks
from wagtail.admin.panels import FieldPanel, MultiFieldPanel, ObjectList
from wagtail.images import get_image_model
from wagtail.permissions import register_permission_policy
from wagtail.snippets.models import register_snippet
from wagtail.snippets.views import chooser as snippet_choosers
from wagtail.snippets.views.snippets import SnippetViewSet

from members.admin_views import ScopedModelViewSet

from . import admin_views
from .admin_forms import CertificateTemplateForm
from .models import Certificate, CertificateTemplate
from .permissions import TEMPLATE_POLICY, CertificatePermissionPolicy, ImagePermissionPolicy

register_permission_policy(CertificateTemplate, TEMPLATE_POLICY)
register_permission_policy(Certificate, CertificatePermissionPolicy(Certificate))


@hooks.register("register_admin_urls")
def register_image_policy():
    """Put ImagePermissionPolicy in place when the admin's URLs are built: wagtail.images
    registers its own in its ready(), which may run after this module is imported."""
    model = get_image_model()
    register_permission_policy(
        model,
        ImagePermissionPolicy(
            model, auth_model="wagtailimages.Image", owner_field_name="uploaded_by_user"
        ),
    )
    return []


# --- Templates (a snippet) ----------------------------------------------------------------------


class TemplateChooserViewSet(snippet_choosers.SnippetChooserViewSet):
    choose_view_class = admin_views.scoped_chooser(snippet_choosers.ChooseView)
    choose_results_view_class = admin_views.scoped_chooser(snippet_choosers.ChooseResultsView)
    chosen_view_class = admin_views.scoped_chooser(snippet_choosers.SnippetChosenView)
    chosen_multiple_view_class = admin_views.scoped_chooser(
        snippet_choosers.SnippetChosenMultipleView
    )


class CertificateTemplateViewSet(SnippetViewSet):
    model = CertificateTemplate
    icon = "doc-full"
    menu_label = _("Certificate templates")
    menu_order = 410
    add_to_admin_menu = True
    index_view_class = admin_views.TemplateIndexView
    add_view_class = admin_views.TemplateCreateView
    edit_view_class = admin_views.TemplateEditView
    copy_view_class = admin_views.TemplateCopyView
    copy_view_enabled = True
    chooser_viewset_class = TemplateChooserViewSet
    list_display = ["name", "kind", "title", "owner_organization", "is_default", "updated_at"]
    list_filter = ["kind"]
    edit_handler = ObjectList(
        [
            MultiFieldPanel(
                [
                    FieldPanel("name"),
                    FieldPanel("kind"),
                    FieldPanel("owner_organization"),
                    FieldPanel("is_default"),
                ],
                heading=_("Template"),
            ),
            MultiFieldPanel(
                [FieldPanel("title"), FieldPanel("body"), FieldPanel("issuer_lines")],
                heading=_("Text"),
            ),
            MultiFieldPanel(
                [FieldPanel("seal"), FieldPanel("signature"), FieldPanel("border")],
                heading=_("Seal, signature and border"),
            ),
        ],
        base_form_class=CertificateTemplateForm,
    )

    def get_index_view_kwargs(self, **kwargs):
        return super().get_index_view_kwargs(
            pdf_preview_url_name=self.get_url_name("preview_pdf"), **kwargs
        )

    def get_edit_view_kwargs(self, **kwargs):
        return super().get_edit_view_kwargs(
            pdf_preview_url_name=self.get_url_name("preview_pdf"), **kwargs
        )

    def construct_view(self, view_class, **kwargs):
        scoped = type(view_class.__name__, (admin_views.TemplateScopeMixin, view_class), {})
        return super().construct_view(scoped, **kwargs)

    def get_urlpatterns(self):
        return [
            *super().get_urlpatterns(),
            path("preview-pdf/<int:pk>/", admin_views.preview_pdf, name="preview_pdf"),
        ]


register_snippet(CertificateTemplateViewSet)


# --- Certificates of the trainer's subtree ------------------------------------------------------


class CertificateViewSet(ScopedModelViewSet):
    model = Certificate
    path_lookup = "member__organization__path"
    icon = "doc-full-inverse"
    menu_label = _("Certificates")
    menu_order = 400
    add_to_admin_menu = True
    index_view_class = admin_views.CertificateIndexView
    inspect_view_class = admin_views.CertificateInspectView
    inspect_view_enabled = True
    inspect_view_fields = [
        "number",
        "kind",
        "name",
        "organization_name",
        "round_title",
        "year",
        "hours",
        "issued_on",
        "state",
        "revoked_at",
        "revoke_reason",
        "supersedes",
    ]
    copy_view_enabled = False
    list_filter = ["kind", "state", "year"]
    search_fields = ["name", "number"]
    ordering = ["-issued_at", "-pk"]

    form_fields = ["revoke_reason"]  # never shown: nobody may add or edit (see the policy)

    def get_urlpatterns(self):
        return [
            *super().get_urlpatterns(),
            path("issue/", admin_views.IssueRoundsView.as_view(), name="issue"),
            path("revoke/<int:pk>/", admin_views.RevokeView.as_view(), name="revoke"),
            path("reissue/<int:pk>/", admin_views.ReissueView.as_view(), name="reissue"),
        ]


@hooks.register("register_admin_viewset")
def register_certificates_viewset():
    return CertificateViewSet("issued_certificates")
