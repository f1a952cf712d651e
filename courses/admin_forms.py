"""Admin forms of the courses app: the course page's, and the "owned by" field that courses and
certificate templates share (DESIGN.md: content and templates belong to the level that made
them; see members.access.may_change_content)."""

from django import forms
from django.db.models import Q
from django.utils.translation import gettext_lazy as _
from wagtail.admin.forms import WagtailAdminPageForm

from members import access
from members.models import Organization, Role

OWNER_FIELD = "owner_organization"
# A superuser may give content to any of the top levels (a select of the whole tree's thousands
# of nodes would not do); a trainer to the levels where she is a trainer.
SUPERUSER_OWNER_DEPTH = 2


class OwnerChoiceField(forms.ModelChoiceField):
    """The organisation owning a piece of content. Left out of the posted data (a script, a
    form from before ownership), it keeps ``default``; left empty, it is the top of the tree
    only where ``allow_top``."""

    def __init__(self, *, default=None, allow_top=False, **kwargs):
        super().__init__(
            required=False, empty_label=_("The whole tree") if allow_top else None, **kwargs
        )
        self.default = default
        self.allow_top = allow_top

    def clean(self, value):
        if value is None or (value in self.empty_values and not self.allow_top):
            return self.default
        return super().clean(value)


def add_owner_field(form, name=OWNER_FIELD):
    """Offer on ``form`` the levels its user may give the content to.

    A trainer picks one of the organisations where she is a trainer (the first by default),
    or keeps the current owner if it lies inside them: she never gives content away to a level
    she does not answer for. A superuser picks one of the top levels, or the whole tree.
    """
    user = form.for_user
    model_field = form._meta.model._meta.get_field(name)
    current = getattr(form.instance, name) if getattr(form.instance, f"{name}_id", None) else None
    roots = access.role_roots(user, (Role.TRAINER,))
    if roots is None:
        offered = Q(depth__lte=SUPERUSER_OWNER_DEPTH)
        default = current
    else:
        roots = sorted(roots, key=lambda root: root.path)
        offered = Q(pk__in=[root.pk for root in roots])
        keep = current is not None and access.may_change_content(user, current)
        default = current if keep else (roots[0] if roots else None)
    if default is not None:
        offered |= Q(pk=default.pk)
    field = OwnerChoiceField(
        queryset=Organization.objects.filter(offered).order_by("path"),
        default=default,
        allow_top=roots is None,
        label=model_field.verbose_name,
        help_text=model_field.help_text,
    )
    form.fields[name] = field
    form.initial[name] = default.pk if default is not None else None


class CoursePageForm(WagtailAdminPageForm):
    """A course names the level that owns it: that level's trainers (and those above) change
    it and its lessons; every other trainer uses it as it is."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if OWNER_FIELD in self.fields and self.for_user is not None:
            add_owner_field(self)
