"""Who may see and change certificate templates, certificates, and the pictures templates print,
in the Wagtail admin. certificates.wagtail_hooks registers these policies.

Templates belong to the level that made them (members.access.may_change_content): a trainer
sees, previews and chooses the templates owned on the path from the top down to her, and below
her; she changes only those owned inside her subtree.
"""

from django.db.models import Q
from wagtail.permission_policies import ModelPermissionPolicy
from wagtail.permission_policies.collections import CollectionOwnershipPermissionPolicy

from members import access

from .models import CertificateTemplate


class TemplatePermissionPolicy(ModelPermissionPolicy):
    """The model permissions, narrowed per template to the level that owns it: viewing (and
    copying, previewing, choosing) one owned on the trainer's path to the top or below her;
    changing and deleting one owned inside her subtree."""

    CHANGING = frozenset({"change", "delete"})

    def user_has_permission_for_instance(self, user, action, instance):
        if not self.user_has_permission(user, action):
            return False
        owner = instance.owner_organization
        if action in self.CHANGING:
            return access.may_change_content(user, owner)
        return access.may_use_content(user, owner)

    def instances_user_has_any_permission_for(self, user, actions):
        if not self.user_has_any_permission(user, actions):
            return self.model._default_manager.none()
        if self.CHANGING.issuperset(actions):
            condition = access.changeable_content_q(user)
        else:
            condition = access.usable_content_q(user)
        templates = self.model._default_manager.all()
        return templates if condition is None else templates.filter(condition)


TEMPLATE_POLICY = TemplatePermissionPolicy(CertificateTemplate)


class ImagePermissionPolicy(CollectionOwnershipPermissionPolicy):
    """Wagtail's image permissions, and one more rule: a picture a template prints as its seal
    or signature is replaced or deleted only by a trainer who may change every such template.
    Otherwise a county's trainer could change what the city's certificates print by editing
    the city's seal in the image library."""

    CHANGING = frozenset({"change", "delete"})

    def _may_change_templates_of(self, user, image) -> bool:
        printing = CertificateTemplate.objects.filter(
            Q(seal=image) | Q(signature=image)
        ).select_related("owner_organization")
        return all(access.may_change_content(user, t.owner_organization) for t in printing)

    def user_has_permission_for_instance(self, user, action, instance):
        return self.user_has_any_permission_for_instance(user, [action], instance)

    def user_has_any_permission_for_instance(self, user, actions, instance):
        actions = set(actions)
        if actions & self.CHANGING and not self._may_change_templates_of(user, instance):
            actions -= self.CHANGING
        return bool(actions) and super().user_has_any_permission_for_instance(
            user, actions, instance
        )

    def instances_user_has_any_permission_for(self, user, actions):
        images = super().instances_user_has_any_permission_for(user, actions)
        condition = access.changeable_content_q(user)
        if condition is None or not self.CHANGING.issuperset(actions):
            return images
        printing = CertificateTemplate.objects.exclude(condition)
        seals = printing.filter(seal__isnull=False).values("seal")
        signatures = printing.filter(signature__isnull=False).values("signature")
        return images.exclude(pk__in=seals).exclude(pk__in=signatures)


class CertificatePermissionPolicy(ModelPermissionPolicy):
    """Certificates are never added, edited or deleted in the admin: the services issue, revoke
    and re-issue them. Listing needs the view (or change) permission."""

    def user_has_permission(self, user, action):
        if action in ("add", "change", "delete"):
            return False
        if action == "view":
            return super().user_has_permission(user, "view") or super().user_has_permission(
                user, "change"
            )
        return super().user_has_permission(user, action)
