from . import access


def roles(request):
    """What the navigation needs to know about the user's roles, computed lazily."""
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {}
    assignments = access.role_assignments(user)
    return {
        "user_roles": assignments,
        "user_is_staff_role": user.is_superuser or bool(assignments),
    }
