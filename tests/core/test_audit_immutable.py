"""The application cannot change or delete audit records: the database refuses, whatever asks.

These run on SQLite and on PostgreSQL (scripts/with-postgres.sh) against the triggers the
migration installed — the same ones production has.
"""

import pytest
from auditlog.models import LogEntry
from django.apps import apps
from django.contrib import admin
from django.contrib.auth import get_user_model
from django.contrib.contenttypes.models import ContentType
from django.db import IntegrityError, connection, transaction
from django.test import RequestFactory
from django.urls import reverse

from core.audit import audit_event, audit_log_triggers, protect_audit_log
from members.signals import keep_audit_log_protected

from .. import factories

pytestmark = pytest.mark.django_db


def refused():
    """Expect the database's refusal; the savepoint keeps the test's transaction usable."""

    class Refused:
        def __enter__(self):
            self.raises = pytest.raises(IntegrityError, match="audit log records")
            self.raises.__enter__()
            self.atomic = transaction.atomic()
            self.atomic.__enter__()

        def __exit__(self, *exc):
            handled = self.atomic.__exit__(*exc)
            return self.raises.__exit__(*exc) if not handled else handled

    return Refused()


@pytest.fixture
def entry(city):
    return audit_event(event="roster_export", obj=city.trainer, actor=city.trainer, rows=3)


def test_the_triggers_are_installed(db):
    assert audit_log_triggers(connection)


def test_orm_updates_are_refused(entry):
    entry.object_repr = "篡改"
    with refused():
        entry.save()
    with refused():
        LogEntry.objects.filter(pk=entry.pk).update(additional_data={"event": "nothing"})
    with refused():
        LogEntry.objects.filter(pk=entry.pk).update(actor=None)
    stored = LogEntry.objects.get(pk=entry.pk)
    assert stored.object_repr == str(entry.actor)
    assert stored.additional_data["rows"] == 3


def test_orm_deletes_are_refused(entry):
    with refused():
        entry.delete()
    with refused():
        LogEntry.objects.all().delete()
    assert LogEntry.objects.filter(pk=entry.pk).exists()


def test_raw_sql_is_refused(entry):
    table = LogEntry._meta.db_table
    with refused(), connection.cursor() as cursor:
        cursor.execute(f"UPDATE {table} SET remote_addr = '10.9.9.9' WHERE id = %s", [entry.pk])
    with refused(), connection.cursor() as cursor:
        cursor.execute(f"DELETE FROM {table} WHERE id = %s", [entry.pk])
    with refused(), connection.cursor() as cursor:
        cursor.execute(f"DELETE FROM {table}")
    assert LogEntry.objects.get(pk=entry.pk).remote_addr is None


def test_new_records_are_still_written(entry, city):
    audit_event(event="roster_export", obj=city.trainer, actor=city.trainer, rows=4)
    assert LogEntry.objects.filter(additional_data__event="roster_export").count() == 2


def test_an_account_that_acted_cannot_be_deleted_an_unused_one_can(city):
    # Deleting a user would blank the actor of its records (on_delete SET_NULL): refused.
    audit_event(event="login", obj=city.trainer_a, actor=city.trainer_a)
    with refused():
        city.trainer_a.delete()
    assert get_user_model().objects.filter(pk=city.trainer_a.pk).exists()
    unused = get_user_model().objects.create_user("typo", password=factories.PASSWORD)
    unused.delete()
    assert not get_user_model().objects.filter(username="typo").exists()


def test_wagtail_refuses_deleting_an_audited_account_and_says_why(city, client_for):
    root = get_user_model().objects.create_superuser("root", password=factories.PASSWORD)
    audit_event(event="login", obj=city.trainer_a, actor=city.trainer_a)
    admin_client = client_for(root)
    url = reverse("wagtailusers_users:delete", args=[city.trainer_a.pk])
    response = admin_client.post(url, follow=True)
    assert get_user_model().objects.filter(pk=city.trainer_a.pk).exists()
    messages = " ".join(str(m) for m in response.context["messages"])
    assert "trainer_a" in messages
    bulk = (
        reverse("wagtail_bulk_action", args=["auth", "user", "delete"]) + f"?id={city.trainer_a.pk}"
    )
    response = admin_client.post(bulk, follow=True)
    assert get_user_model().objects.filter(pk=city.trainer_a.pk).exists()
    assert "trainer_a" in " ".join(str(m) for m in response.context["messages"])
    unused = get_user_model().objects.create_user("typo", password=factories.PASSWORD)
    admin_client.post(reverse("wagtailusers_users:delete", args=[unused.pk]))
    assert not get_user_model().objects.filter(pk=unused.pk).exists()


def test_deleting_a_content_type_cannot_cascade_into_the_log(entry):
    with refused():
        ContentType.objects.get_for_model(get_user_model()).delete()


def test_the_django_admin_offers_no_change_or_delete(entry, city):
    model_admin = admin.site._registry[LogEntry]
    request = RequestFactory().get("/")
    request.user = get_user_model().objects.create_superuser("root", password="x")
    assert not model_admin.has_add_permission(request)
    assert not model_admin.has_change_permission(request, entry)
    assert not model_admin.has_delete_permission(request, entry)
    assert "delete_selected" not in model_admin.get_actions(request)


def test_triggers_lost_in_a_table_rebuild_come_back_after_migrate(entry):
    # What an SQLite table rebuild (a later auditlog migration) does to triggers.
    with connection.cursor() as cursor:
        if connection.vendor == "sqlite":
            for name in audit_log_triggers(connection):
                cursor.execute(f"DROP TRIGGER {name}")
        else:
            for name in audit_log_triggers(connection):
                cursor.execute(f"DROP TRIGGER {name} ON {LogEntry._meta.db_table}")
    assert not audit_log_triggers(connection)
    keep_audit_log_protected(sender=None, app_config=apps.get_app_config("members"))
    with refused():
        entry.delete()
    assert protect_audit_log(connection) is False  # already there: nothing to do


@pytest.mark.django_db(transaction=True)
def test_transactional_tests_run_against_the_real_triggers(city):
    """Transactional tests (and live servers) empty the database afterwards; the test harness
    (tests/audit_flush.py) lets that flush through, and only that."""
    entry = audit_event(event="roster_export", obj=city.trainer, actor=city.trainer)
    with pytest.raises(IntegrityError):
        LogEntry.objects.filter(pk=entry.pk).delete()
    assert LogEntry.objects.filter(pk=entry.pk).exists()
