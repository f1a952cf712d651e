"""Shared test builders. Organisations go through treebeard so paths are real."""

import itertools

from django.contrib.auth import get_user_model

from members import services
from members.models import Member, Organization, Role

PASSWORD = "Test-pass-2026"
_codes = itertools.count(1)
_phones = itertools.count(1)


def org(name=None, parent=None, **fields):
    """An organisation, as a root or under ``parent``."""
    number = next(_codes)
    fields.setdefault("code", f"T{number:05d}")
    fields.setdefault("kind", Organization.Kind.BRANCH if parent else Organization.Kind.COMMITTEE)
    name = name or f"组织{number}"
    if parent is None:
        return Organization.add_root(name=name, **fields)
    return Organization.objects.get(pk=parent.pk).add_child(name=name, **fields)


def next_phone():
    return f"137{next(_phones):08d}"


def member(organization, name="张三", password=PASSWORD, **fields):
    fields.setdefault("phone", next_phone())
    return services.member_create(name=name, organization=organization, password=password, **fields)


def staff(username, role: Role, organization, password=PASSWORD):
    User = get_user_model()
    user = User.objects.create_user(username=username, password=password)
    services.role_assign(user=user, role=role, organization=organization)
    return user


__all__ = ["PASSWORD", "Member", "member", "org", "staff"]
