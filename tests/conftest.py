import pytest
from django.test import Client
from django.utils import translation

from members.models import Role

from . import factories

# SQLite flushes with DELETE, which the audit log's triggers refuse: see tests/audit_flush.py.
pytest_plugins = ["tests.audit_flush"]


@pytest.fixture(autouse=True)
def _chinese_by_default(settings):
    """The product speaks Simplified Chinese unless a test asks otherwise."""
    settings.LANGUAGE_CODE = "zh-hans"
    with translation.override("zh-hans"):
        yield


@pytest.fixture
def city(db):
    """A small tree: city > two counties > a branch each, with members and staff.

    Returns a namespace with the nodes, members and logged-out clients' credentials.
    """

    class City:
        pass

    c = City()
    c.root = factories.org("示范市委", code="CITY")
    c.county_a = factories.org("城关区委", c.root, code="A", kind="committee")
    c.county_b = factories.org("青山县委", c.root, code="B", kind="committee")
    c.branch_a = factories.org("幸福社区党支部", c.county_a, code="A-01")
    c.branch_b = factories.org("红旗村党支部", c.county_b, code="B-01")
    c.member_a = factories.member(c.branch_a, name="王芳", phone="13800000001")
    c.member_b = factories.member(c.branch_b, name="李强", phone="13900000002")
    c.secretary_a = factories.staff("sec_a", Role.SECRETARY, c.branch_a)
    c.secretary_b = factories.staff("sec_b", Role.SECRETARY, c.branch_b)
    c.operator_a = factories.staff("op_a", Role.OPERATOR, c.branch_a)
    c.trainer = factories.staff("trainer", Role.TRAINER, c.root)
    c.trainer_a = factories.staff("trainer_a", Role.TRAINER, c.county_a)
    return c


def logged_in(user):
    client = Client()
    client.force_login(user, backend="members.backends.PhoneOrUsernameBackend")
    return client


@pytest.fixture
def client_for():
    return logged_in
