"""Who may see whom: the one place that answers it.

Every role is bound to a node of the organisation tree and covers that node's subtree.
Views that take an id call ``get_*_or_404`` here; lists start from ``visible_*`` here.
"""

from functools import wraps

from django.contrib.auth.decorators import login_required
from django.db.models import Q
from django.http import Http404

from .models import Member, Organization, Role, RoleAssignment, subtree_q

STAFF_ROLES = (Role.TRAINER, Role.SECRETARY, Role.OPERATOR)
# Roles that work with members by phone (calling, re-importing); site operators see masked numbers.
ROLES_SEEING_PHONES = (Role.TRAINER, Role.SECRETARY)
# Roles that change who is on a roster.
ROLES_MANAGING_ROSTER = (Role.TRAINER, Role.SECRETARY)


def member_of(user):
    """The user's own member record; ``None`` for staff-only accounts and anonymous visitors."""
    if not user.is_authenticated:
        return None
    return getattr(user, "member", None)


def role_assignments(user):
    """The user's role assignments, loaded once per user object."""
    if not user.is_authenticated:
        return []
    cached = getattr(user, "_lunxun_roles", None)
    if cached is None:
        cached = list(RoleAssignment.objects.for_user(user))
        user._lunxun_roles = cached
    return cached


def role_roots(user, roles=STAFF_ROLES):
    """The organisations at which ``user`` holds any of ``roles``; ``None`` means everything."""
    if user.is_authenticated and user.is_superuser:
        return None
    return [a.organization for a in role_assignments(user) if a.role in roles]


def has_role(user, roles=STAFF_ROLES) -> bool:
    roots = role_roots(user, roles)
    return roots is None or bool(roots)


def covers_whole_tree(user, roles=STAFF_ROLES) -> bool:
    """True for superusers and for users holding one of ``roles`` at every root of the tree."""
    roots = role_roots(user, roles)
    if roots is None:
        return True
    held = {root.pk for root in roots if root.is_root()}
    return bool(held) and not Organization.get_root_nodes().exclude(pk__in=held).exists()


def visible_organizations(user, roles=STAFF_ROLES):
    roots = role_roots(user, roles)
    if roots is None:
        return Organization.objects.all()
    return Organization.objects.in_subtree(*roots)


def visible_members(user, roles=STAFF_ROLES):
    roots = role_roots(user, roles)
    if roots is None:
        return Member.objects.all()
    return Member.objects.in_subtree(*roots)


def can_see_organization(user, organization, roles=STAFF_ROLES) -> bool:
    roots = role_roots(user, roles)
    return roots is None or any(root.contains(organization) for root in roots)


def can_see_member(user, member, roles=STAFF_ROLES) -> bool:
    if user.is_authenticated and member.user_id == user.pk:
        return True
    return can_see_organization(user, member.organization, roles)


def can_see_phone(user, member) -> bool:
    """True when ``user`` may see ``member``'s full number: their own, or a member inside a
    subtree where ``user`` holds a role that needs phones. Decided per member, never per user:
    an operator who is also a secretary elsewhere sees full numbers only there."""
    return phone_visibility(user)(member)


def phone_visibility(user):
    """``can_see_phone`` for a whole list: ``member -> bool``, with the viewer's roots read once
    and each member tested by path prefix, no query per row (load ``member.organization``)."""
    roots = role_roots(user, ROLES_SEEING_PHONES)
    if roots is None:
        return lambda member: True
    prefixes = tuple(root.path for root in roots)
    own = user.pk if user.is_authenticated else None

    def visible(member) -> bool:
        return member.user_id == own or member.organization.path.startswith(prefixes)

    return visible


# What each role that manages a roster covers when it resets a password: a reset hands the
# account, with every power on it, to whoever holds the reset slip. A trainer's account can do
# more than manage a subtree (the Wagtail admin, the city's shared content), so only a trainer
# may reset it.
RESET_COVERS = {
    Role.TRAINER: frozenset(STAFF_ROLES),
    Role.SECRETARY: frozenset({Role.SECRETARY, Role.OPERATOR}),
}


def can_reset_password(user, member) -> bool:
    """May ``user`` reset ``member``'s password? Only when the account can do nothing that
    ``user`` cannot do already:

    - ``user`` is a trainer or secretary (or a superuser) and ``member`` lies in their subtree;
    - every role of ``member``'s own account lies on an organisation inside a subtree where
      ``user`` holds a role covering it (``RESET_COVERS``): never someone holding a role above
      or beside ``user``'s;
    - never a superuser's or staff (Django admin) account, and never ``user``'s own: they change
      their own password with the one they have.
    """
    if not user.is_authenticated or not user.is_active:
        return False
    account = member.user
    if account.pk == user.pk or account.is_superuser or account.is_staff:
        return False
    if user.is_superuser:
        return True
    held = [a for a in role_assignments(user) if a.role in RESET_COVERS]
    if not any(a.organization.contains(member.organization) for a in held):
        return False
    return all(
        any(
            theirs.role in RESET_COVERS[mine.role]
            and mine.organization.contains(theirs.organization)
            for mine in held
        )
        for theirs in RoleAssignment.objects.for_user(account)
    )


def get_organization_or_404(user, pk, roles=STAFF_ROLES) -> Organization:
    """The organisation ``pk`` if ``user`` may see it; 404 otherwise, so ids reveal nothing."""
    try:
        organization = Organization.objects.get(pk=pk)
    except (Organization.DoesNotExist, ValueError, TypeError):
        raise Http404 from None
    if not can_see_organization(user, organization, roles):
        raise Http404
    return organization


def is_self(user, member) -> bool:
    """Is ``member`` the user's own record? Decisions about oneself (leave, exemption, one's own
    categories or study records) go to the level above."""
    return user is not None and user.is_authenticated and member.user_id == user.pk


def can_edit_categories(user, member) -> bool:
    """A secretary or trainer keeps the status, position and categories of members in her
    subtree, never her own: they decide which trainings she is in, so that goes above her."""
    if is_self(user, member) and not user.is_superuser:
        return False
    return can_see_organization(user, member.organization, ROLES_MANAGING_ROSTER)


def get_member_or_404(user, pk, roles=STAFF_ROLES) -> Member:
    """The member ``pk`` if ``user`` may see them; 404 otherwise."""
    try:
        member = Member.objects.select_related("organization", "user").get(pk=pk)
    except (Member.DoesNotExist, ValueError, TypeError):
        raise Http404 from None
    if not can_see_member(user, member, roles):
        raise Http404
    return member


def role_required(*roles):
    """Guard a view: logged in, and holding one of ``roles`` somewhere in the tree (else 404)."""
    roles = roles or STAFF_ROLES

    def decorator(view):
        @login_required
        @wraps(view)
        def wrapper(request, *args, **kwargs):
            if not has_role(request.user, roles):
                raise Http404
            return view(request, *args, **kwargs)

        return wrapper

    return decorator


# --- Content and templates: they belong to the level that made them ---------------------------
# A course or a certificate template names the organisation that owns it (``None``: the top of
# the tree, e.g. what the system made). Trainers of every level use what the levels above them
# own; only the owning level's trainers, and those above them, change it.


def may_change_content(user, owner) -> bool:
    """May ``user`` change content owned by ``owner`` (an Organization, or ``None`` for the top
    of the tree)? A trainer changes what is owned inside her own subtree; what the top owns, only
    a trainer at the top."""
    roots = role_roots(user, (Role.TRAINER,))
    if roots is None:
        return True
    if owner is None:
        return any(root.depth == 1 for root in roots)
    return any(root.contains(owner) for root in roots)


def may_use_content(user, owner) -> bool:
    """May ``user`` see and use content owned by ``owner``? A trainer uses what is owned on the
    path from the top down to her own roots, and what is owned inside her subtree; not what a
    sibling level owns."""
    roots = role_roots(user, (Role.TRAINER,))
    if roots is None or owner is None:
        return True
    return any(root.contains(owner) or owner.contains(root) for root in roots)


def usable_content_q(user, lookup="owner_organization"):
    """``may_use_content`` as a condition on the owner field ``lookup``; ``None`` for everything
    (a superuser). No trainer role: only what the top owns."""
    roots = role_roots(user, (Role.TRAINER,))
    if roots is None:
        return None
    above = {
        root.path[:end]
        for root in roots
        for end in range(root.steplen, len(root.path) + 1, root.steplen)
    }
    condition = Q(**{f"{lookup}__isnull": True})
    if roots:
        condition |= Q(**{f"{lookup}__path__in": sorted(above)})
        condition |= subtree_q(roots, f"{lookup}__path")
    return condition


def changeable_content_q(user, lookup="owner_organization"):
    """``may_change_content`` as a condition on ``lookup``; ``None`` for everything."""
    roots = role_roots(user, (Role.TRAINER,))
    if roots is None:
        return None
    condition = subtree_q(roots, f"{lookup}__path")
    if any(root.depth == 1 for root in roots):
        condition |= Q(**{f"{lookup}__isnull": True})
    return condition
