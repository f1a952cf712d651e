"""The apps depend on each other in one direction: core <- members <- courses <- quizzes <-
rounds <- certificates. A lower app never imports a higher one (core imports no domain app at all),
models never import views, and the other apps use members only for members, organisations,
roles and access.

Every import is read from the source (the syntax tree, so imports inside functions count too),
relative ones resolved to the module they name.
"""

import ast
from pathlib import Path

from django.conf import settings

ROOT = Path(settings.BASE_DIR)
# Lowest first: an app may import those before it, never those after it.
ORDER = ["core", "members", "courses", "quizzes", "rounds", "certificates"]
RANK = {app: rank for rank, app in enumerate(ORDER)}
# Not apps, but code that imports the apps (settings, URLs, WSGI).
OTHER_CODE = ["config"]

# What the other apps (and config) may import from members: members, organisations, roles and
# access, and the tools that make them (the import engine, activation, the demo city). Anything
# else they need belongs in core.
MEMBERS_MODULES_FOR_OTHERS = {
    "members",  # `from members import access`
    "members.models",
    "members.access",
    "members.services",
    "members.importing",
    "members.signals",
    "members.demo",
    # The organisation code field of the admin's forms (certificates' templates name one).
    "members.admin_forms",
    # The site history, shown only to those whose scope is the whole tree (config/urls.py), and
    # ScopedMixin / ScopedModelViewSet: the admin's subtree scoping other apps' viewsets share.
    "members.admin_views",
}


def python_files(app):
    folder = ROOT / app
    for path in sorted(folder.rglob("*.py")):
        if "migrations" not in path.relative_to(folder).parts:
            yield path


def module_name(path: Path) -> list[str]:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return parts[:-1] if parts[-1] == "__init__" else parts


def imports(path: Path):
    """Each module ``path`` imports (a name imported from a package counts as a module too:
    ``from members import access`` imports members and members.access)."""
    package = module_name(path)
    if path.name != "__init__.py":
        package = package[:-1]
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - (node.level - 1)]
                module = ".".join([*base, *([node.module] if node.module else [])])
            else:
                module = node.module
            yield module
            for alias in node.names:
                yield f"{module}.{alias.name}"


def app_of(module: str) -> str:
    return module.split(".")[0]


def test_walker_sees_imports_inside_functions_and_relative_ones(tmp_path, monkeypatch):
    monkeypatch.setattr(f"{__name__}.ROOT", tmp_path)
    source = tmp_path / "rounds" / "sub" / "thing.py"
    source.parent.mkdir(parents=True)
    source.write_text(
        "def f():\n    from certificates.models import Certificate\n"
        "from ..views import x\nfrom . import other\n"
    )
    found = set(imports(source))
    assert "certificates.models" in found
    assert "rounds.views" in found
    assert "rounds.sub.other" in found


def test_no_app_imports_a_higher_one():
    found = []
    for app in ORDER:
        for path in python_files(app):
            for module in imports(path):
                target = app_of(module)
                if target in RANK and RANK[target] > RANK[app]:
                    found.append(f"{path.relative_to(ROOT)}: {module}")
    assert sorted(set(found)) == []


def test_core_imports_no_domain_app():
    domain = set(ORDER) - {"core"}
    found = [
        f"{path.relative_to(ROOT)}: {module}"
        for path in python_files("core")
        for module in imports(path)
        if app_of(module) in domain
    ]
    assert sorted(set(found)) == []


def test_models_never_import_views():
    found = set()
    for app in ORDER:
        for path in python_files(app):
            if path.name != "models.py":
                continue
            for module in imports(path):
                parts = module.split(".")
                if parts[0] not in RANK:
                    continue
                for end, part in enumerate(parts[1:], start=2):
                    if part.endswith("views"):  # views, admin_views, calendar_views...
                        found.add(f"{path.relative_to(ROOT)}: {'.'.join(parts[:end])}")
                        break
    assert sorted(found) == []


def test_other_apps_use_members_only_for_members_organisations_roles_and_access():
    found = []
    for app in [*ORDER, *OTHER_CODE]:
        if app == "members":
            continue
        for path in python_files(app):
            for module in imports(path):
                if app_of(module) != "members":
                    continue
                # "members.models.Member" is a name taken from members.models.
                parent = module.rsplit(".", 1)[0]
                if module in MEMBERS_MODULES_FOR_OTHERS or (
                    parent != "members" and parent in MEMBERS_MODULES_FOR_OTHERS
                ):
                    continue
                found.append(f"{path.relative_to(ROOT)}: {module}")
    assert sorted(set(found)) == []
