"""A database made before the import record was renamed migrates forward with nothing lost.

The database is taken back to the members migration before ``SpreadsheetImport`` (where the
model was ``RosterImport``), filled through the historical models as it was then, and migrated
forward again with ``migrate``, as an operator's upgrade does.
"""

from datetime import UTC, date, datetime

import pytest
from auditlog.models import LogEntry as AuditEntry
from django.contrib.contenttypes.models import ContentType
from django.core.management import call_command
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

from members.models import Member, Organization, SpreadsheetImport

BEFORE_RENAME = ("members", "0003_activation_code_kind_organization_code_characters")

ROWS = [
    {"row": 2, "name": "王芳", "phone": "13800000001", "org_code": "OLD-01", "gender": "female"},
    {"row": 3, "name": "李强", "phone": "13900000002", "org_code": "OLD-01", "gender": None},
]
REPORT = {
    "counts": {"new": 2, "changed": 0, "unchanged": 0, "errors": 0, "total": 2},
    "errors": [],
    "missing": [],
    "changes": [{"row": 2, "label": "王芳", "action": "new", "fields": ["name"]}],
}
APPLIED_AT = datetime(2026, 11, 30, 8, 15, tzinfo=UTC)


def _migrate(*target):
    call_command("migrate", *target, verbosity=0, interactive=False)


def _historical_apps():
    """The models as they were before the rename: every other app at its latest, but for the
    apps whose latest migrations need later members migrations (left out)."""
    loader = MigrationExecutor(connection).loader
    graph = loader.graph
    before = set(graph.forwards_plan(BEFORE_RENAME))
    later = {n for n in graph.nodes if n[0] == "members" and n not in before}
    nodes = [
        node
        for node in graph.leaf_nodes()
        if node[0] != "members" and not later.intersection(graph.forwards_plan(node))
    ]
    return loader.project_state([*nodes, BEFORE_RENAME]).apps


@pytest.mark.django_db(transaction=True)
def test_an_import_made_before_the_rename_is_still_there_after_migrating_forward():
    _migrate(*BEFORE_RENAME)
    try:
        old = _historical_apps()
        User = old.get_model("auth", "User")
        OldOrganization = old.get_model("members", "Organization")
        OldMember = old.get_model("members", "Member")
        RosterImport = old.get_model("members", "RosterImport")
        ContentTypeThen = old.get_model("contenttypes", "ContentType")
        LogEntry = old.get_model("auditlog", "LogEntry")

        uploader = User.objects.create(username="sec_old", password="!")
        root = OldOrganization.objects.create(
            path="0001", depth=1, numchild=1, name="旧市委", code="OLD", kind="committee"
        )
        branch = OldOrganization.objects.create(
            path="00010001", depth=2, name="旧支部", code="OLD-01", domain="rural"
        )
        member = OldMember.objects.create(
            user=User.objects.create(username="13800000001", password="!"),
            name="王芳",
            phone="13800000001",
            organization=branch,
            gender="female",
            status="probationary",
            joined_on=date(2020, 7, 1),
        )
        record = RosterImport.objects.create(
            kind="roster",
            state="applied",
            uploaded_by=uploader,
            file_name="名册.xlsx",
            file_sha256="ab" * 32,
            rows=ROWS,
            report=REPORT,
            applied_at=APPLIED_AT,
        )
        import_type = ContentTypeThen.objects.get(app_label="members", model="rosterimport")
        entry = LogEntry.objects.create(
            content_type=import_type,
            object_pk=str(record.pk),
            object_id=record.pk,
            object_repr="名册.xlsx",
            action=3,
            additional_data={"event": "roster_import"},
        )
    finally:
        _migrate()  # the test database is left as every other test expects it

    kept = SpreadsheetImport.objects.get(pk=record.pk)
    assert (kept.kind, kept.state, kept.file_name, kept.file_sha256) == (
        SpreadsheetImport.Kind.ROSTER,
        SpreadsheetImport.State.APPLIED,
        "名册.xlsx",
        "ab" * 32,
    )
    assert kept.rows == ROWS
    assert kept.report == REPORT
    assert kept.applied_at == APPLIED_AT
    assert kept.uploaded_by_id == uploader.pk
    assert kept.created_at == record.created_at

    # The audit record of the import still points at it: the content type was renamed, not
    # replaced.
    renamed = ContentType.objects.get_for_model(SpreadsheetImport)
    assert renamed.pk == import_type.pk
    assert not ContentType.objects.filter(app_label="members", model="rosterimport").exists()
    assert AuditEntry.objects.get(pk=entry.pk).content_type_id == renamed.pk
    assert renamed.get_object_for_this_type(pk=int(entry.object_pk)) == kept

    # The organisations and members around it are untouched.
    assert list(Organization.objects.order_by("path").values_list("code", "name", "depth")) == [
        ("OLD", "旧市委", 1),
        ("OLD-01", "旧支部", 2),
    ]
    assert Organization.objects.get(code="OLD-01").get_parent().pk == root.pk
    zhang = Member.objects.get(pk=member.pk)
    assert (zhang.name, zhang.phone, zhang.organization_id, zhang.status, zhang.joined_on) == (
        "王芳",
        "13800000001",
        branch.pk,
        Member.Status.PROBATIONARY,
        date(2020, 7, 1),
    )
