"""Courses belong to the level that made them (DESIGN.md): a county's trainer uses the city's
courses and lessons and cannot change them; she changes her own. Over real admin HTTP, GET and
POST, through every Wagtail path that changes a page."""

from dataclasses import dataclass
from decimal import Decimal

import pytest
from django.urls import reverse
from wagtail.models import Page
from wagtail.test.utils.form_data import querydict_from_html

from courses.models import CourseIndexPage, CoursePage, LessonPage
from rounds.models import Round
from tests import factories

from . import builders

ADMIN_HOME = "/admin/"


@dataclass
class Content:
    course: CoursePage  # the city's
    lesson: LessonPage
    county_course: CoursePage  # county A's
    county_lesson: LessonPage


@pytest.fixture
def content(city):
    course = builders.course("学习党章（市）", owner_organization=city.root)
    county_course = builders.course("城关区党史", owner_organization=city.county_a)
    return Content(
        course=course,
        lesson=builders.lesson(course, title="第一课", hours=Decimal("0.5")),
        county_course=county_course,
        county_lesson=builders.lesson(county_course, title="区第一课", hours=Decimal("1.0")),
    )


def refused(response) -> bool:
    """Wagtail's answer to a permission it refuses: back to the admin's home page."""
    return response.status_code == 302 and response["Location"] == ADMIN_HOME


def form_data(response, **changes):
    """The page form of an admin page, as the browser would post it, with ``changes``."""
    assert response.status_code == 200
    data = querydict_from_html(response.content.decode(), form_id="page-edit-form")
    data.setdefault("body-count", "0")  # a lesson's empty body, which the browser's script posts
    for name, value in changes.items():
        data[name] = value
    return data


def edit_form(client, page, **changes):
    """The page's edit form as the admin shows it to ``client``, with ``changes``."""
    return form_data(client.get(reverse("wagtailadmin_pages:edit", args=[page.pk])), **changes)


def revisions(page) -> int:
    return Page.objects.get(pk=page.pk).revisions.count()


def test_a_county_trainer_cannot_edit_or_publish_a_city_course_or_lesson(city, client_for, content):
    county = client_for(city.trainer_a)
    # The data a city trainer would post: valid, so only the permission refuses it.
    own = client_for(city.trainer)
    lesson_data = edit_form(own, content.lesson, hours_override="9.0", title="改过的课")
    course_data = edit_form(own, content.course, title="改过的课程")

    for page, data in ((content.lesson, lesson_data), (content.course, course_data)):
        url = reverse("wagtailadmin_pages:edit", args=[page.pk])
        assert refused(county.get(url))
        assert refused(county.post(url, data))
        assert refused(county.post(url, {**data, "action-publish": "action-publish"}))
        assert revisions(page) == 0

    lesson = LessonPage.objects.get(pk=content.lesson.pk)
    assert (lesson.title, lesson.hours_override, lesson.hours) == ("第一课", Decimal("0.5"), 0.5)
    assert CoursePage.objects.get(pk=content.course.pk).title == "学习党章（市）"


def test_a_county_trainer_cannot_unpublish_delete_lock_move_or_copy_city_content(
    city, client_for, content
):
    county = client_for(city.trainer_a)
    for page in (content.lesson, content.course):
        for name in ("unpublish", "delete", "lock", "copy", "move"):
            url = reverse(f"wagtailadmin_pages:{name}", args=[page.pk])
            assert refused(county.get(url)) or county.get(url).status_code == 405, (name, page)
            assert refused(county.post(url, {})), (name, page)
    # The lesson moved into her own course, or her lesson into the city's course.
    for page, destination in (
        (content.lesson, content.county_course),
        (content.county_lesson, content.course),
    ):
        url = reverse("wagtailadmin_pages:move_confirm", args=[page.pk, destination.pk])
        assert refused(county.post(url))

    assert LessonPage.objects.get(pk=content.lesson.pk).live
    assert CoursePage.objects.get(pk=content.course.pk).live
    assert not Page.objects.filter(locked=True).exists()
    assert list(LessonPage.objects.child_of(content.course)) == [content.lesson]
    assert list(LessonPage.objects.child_of(content.county_course)) == [content.county_lesson]
    assert CoursePage.objects.count() == 2


def test_bulk_actions_leave_city_content_alone(city, client_for, content):
    county = client_for(city.trainer_a)
    LessonPage.objects.filter(pk=content.lesson.pk).update(live=False)
    for action in ("publish", "unpublish", "delete", "move"):
        url = reverse("wagtail_bulk_action", args=["wagtailcore", "page", action])
        page = content.lesson
        query = f"?id={page.pk}&next={ADMIN_HOME}"
        data = {"move_applicable": "on", "chooser": content.county_course.pk}
        county.post(url + query, data)
    lesson = LessonPage.objects.get(pk=content.lesson.pk)
    assert not lesson.live and lesson.get_parent().pk == content.course.pk


def test_a_county_trainer_cannot_add_a_lesson_to_a_city_course(city, client_for, content):
    county = client_for(city.trainer_a)
    assert refused(county.get(reverse("wagtailadmin_pages:add_subpage", args=[content.course.pk])))
    url = reverse("wagtailadmin_pages:add", args=["courses", "lessonpage", content.course.pk])
    assert refused(county.get(url))
    data = edit_form(client_for(city.trainer), content.lesson, title="塞进来的课", slug="sneak")
    assert refused(county.post(url, {**data, "action-publish": "action-publish"}))
    assert list(LessonPage.objects.child_of(content.course)) == [content.lesson]


def test_she_still_sees_city_courses_and_puts_their_lessons_in_her_rounds(
    city, client_for, content
):
    county = client_for(city.trainer_a)
    index = CourseIndexPage.objects.get()
    listing = county.get(reverse("wagtailadmin_explore", args=[index.pk]))
    assert listing.status_code == 200
    html = listing.content.decode()
    assert content.course.title in html and content.county_course.title in html
    # No edit link to the city's course; one to her own.
    assert reverse("wagtailadmin_pages:edit", args=[content.course.pk]) not in html
    assert reverse("wagtailadmin_pages:edit", args=[content.county_course.pk]) in html
    lessons = county.get(reverse("wagtailadmin_explore", args=[content.course.pk]))
    assert lessons.status_code == 200 and "第一课" in lessons.content.decode()

    form = county.get(reverse("training_rounds:add"))
    assert f'value="{content.lesson.pk}"' in form.content.decode()
    response = county.post(
        reverse("training_rounds:add"),
        {
            "title": "城关区第四季度轮训",
            "opens_on": "2026-10-01",
            "closes_on": "2026-12-31",
            "makeup_deadline": "2027-01-31",
            "scope_roots": "A",
            "lessons": [content.lesson.pk, content.county_lesson.pk],
            "completion_rule": "either",
            "hours": "2",
            "state": "draft",
        },
    )
    assert response.status_code == 302
    assert set(Round.objects.get().lessons.all()) == {content.lesson, content.county_lesson}


def test_a_county_trainer_creates_her_own_course_and_changes_it(city, client_for, content):
    county = client_for(city.trainer_a)
    index = CourseIndexPage.objects.get()
    add_course = reverse("wagtailadmin_pages:add", args=["courses", "coursepage", index.pk])
    data = form_data(county.get(add_course))
    assert data["owner_organization"] == str(city.county_a.pk)  # hers, offered first
    data.update({"title": "城关区新课程", "slug": "chengguan-new", "action-publish": "1"})
    response = county.post(add_course, data)
    assert response.status_code == 302, response.content.decode()[:2000]
    course = CoursePage.objects.get(slug="chengguan-new")
    assert course.live and course.owner_organization == city.county_a

    add_lesson = reverse("wagtailadmin_pages:add", args=["courses", "lessonpage", course.pk])
    data = form_data(county.get(add_lesson), title="新课一", slug="xin-1", hours_override="1.5")
    data["action-publish"] = "1"
    assert county.post(add_lesson, data).status_code == 302
    lesson = LessonPage.objects.get(slug="xin-1")
    assert lesson.live and lesson.hours == Decimal("1.5")

    # Her lesson's hours change, it is unpublished and deleted; her course's title changes.
    data = edit_form(county, lesson, hours_override="2.0", **{"action-publish": "1"})
    assert (
        county.post(reverse("wagtailadmin_pages:edit", args=[lesson.pk]), data).status_code == 302
    )
    assert LessonPage.objects.get(pk=lesson.pk).hours == Decimal("2.0")
    assert not refused(county.post(reverse("wagtailadmin_pages:unpublish", args=[lesson.pk])))
    assert not LessonPage.objects.get(pk=lesson.pk).live
    assert not refused(county.post(reverse("wagtailadmin_pages:delete", args=[lesson.pk])))
    assert not LessonPage.objects.filter(pk=lesson.pk).exists()
    data = edit_form(county, course, title="城关区新课程（修订）", **{"action-publish": "1"})
    assert (
        county.post(reverse("wagtailadmin_pages:edit", args=[course.pk]), data).status_code == 302
    )
    assert CoursePage.objects.get(pk=course.pk).title == "城关区新课程（修订）"


def test_she_cannot_give_her_course_to_another_level(city, client_for, content):
    county = client_for(city.trainer_a)
    url = reverse("wagtailadmin_pages:edit", args=[content.county_course.pk])
    data = edit_form(county, content.county_course, owner_organization=str(city.county_b.pk))
    response = county.post(url, data)
    assert response.status_code == 200  # the form again, with the error
    assert "owner_organization" in response.context["form"].errors
    assert CoursePage.objects.get(pk=content.county_course.pk).owner_organization == city.county_a


def test_a_trainer_of_two_counties_chooses_which_owns_her_course(city, client_for, content):
    from members import services

    services.role_assign(user=city.trainer_a, role="trainer", organization=city.county_b)
    county = client_for(city.trainer_a)
    index = CourseIndexPage.objects.get()
    add_course = reverse("wagtailadmin_pages:add", args=["courses", "coursepage", index.pk])
    form = county.get(add_course)
    choices = form.context["form"].fields["owner_organization"].queryset
    assert set(choices) == {city.county_a, city.county_b}
    data = form_data(form, title="青山县课程", slug="qingshan", owner_organization=city.county_b.pk)
    assert county.post(add_course, data).status_code == 302
    assert CoursePage.objects.get(slug="qingshan").owner_organization == city.county_b


def test_the_city_trainer_changes_city_and_county_courses(city, client_for, content):
    own = client_for(city.trainer)
    for page, changes in (
        (content.lesson, {"hours_override": "0.8"}),
        (content.course, {"title": "学习党章（市，修订）"}),
        (content.county_lesson, {"hours_override": "1.2"}),
    ):
        data = edit_form(own, page, **changes, **{"action-publish": "1"})
        response = own.post(reverse("wagtailadmin_pages:edit", args=[page.pk]), data)
        assert response.status_code == 302 and not refused(response)
    assert LessonPage.objects.get(pk=content.lesson.pk).hours == Decimal("0.8")
    assert LessonPage.objects.get(pk=content.county_lesson.pk).hours == Decimal("1.2")
    assert CoursePage.objects.get(pk=content.course.pk).title == "学习党章（市，修订）"
    assert not refused(own.post(reverse("wagtailadmin_pages:unpublish", args=[content.lesson.pk])))
    assert not LessonPage.objects.get(pk=content.lesson.pk).live


def test_the_course_centre_is_changed_only_at_the_top(city, client_for, content):
    index = CourseIndexPage.objects.get()
    url = reverse("wagtailadmin_pages:edit", args=[index.pk])
    assert refused(client_for(city.trainer_a).get(url))
    assert client_for(city.trainer).get(url).status_code == 200


def test_a_course_of_no_level_is_the_tops(city, content):
    """Made outside the admin (a script, the demo) without an owner: the city's trainers change
    it, the counties' use it."""
    course = builders.course("无主课程")
    lesson = builders.lesson(course)
    for page in (course, lesson):
        assert not page.permissions_for_user(city.trainer_a).can_edit()
        assert page.permissions_for_user(city.trainer).can_edit()


def test_a_trainer_of_a_township_uses_her_countys_course(city, content):
    township = factories.org("城关区某街道党工委", city.county_a, code="A-T9", kind="committee")
    trainer = factories.staff("trainer_t9", "trainer", township)
    perms = content.county_lesson.permissions_for_user(trainer)
    assert not perms.can_edit() and not perms.can_publish() and not perms.can_delete()
    assert content.county_lesson.permissions_for_user(city.trainer_a).can_edit()


@pytest.mark.django_db(transaction=True)
def test_the_migration_gives_existing_courses_to_the_city(city):
    from django.db import connection
    from django.db.migrations.executor import MigrationExecutor

    course = builders.course("旧课程")

    def migrate(target=None):
        executor = MigrationExecutor(connection)
        executor.loader.build_graph()
        # None: every app back to its latest (going back in courses also unapplied the apps
        # that depend on it), so the tests after this one find today's schema.
        executor.migrate([target] if target else executor.loader.graph.leaf_nodes())

    try:
        migrate(("courses", "0005_one_viewing_per_member"))
        migrate(("courses", "0006_course_owner"))
    finally:
        migrate()
    assert CoursePage.objects.get(pk=course.pk).owner_organization == city.root


def test_the_course_listing_asks_the_owners_once_however_many_courses(city, client_for, content):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    index = CourseIndexPage.objects.get()
    url = reverse("wagtailadmin_explore", args=[index.pk])

    def queries() -> int:
        with CaptureQueriesContext(connection) as captured:
            assert client_for(city.trainer_a).get(url).status_code == 200
        return len(captured)

    queries()  # the first request of a process fills caches (run alone, it reads more)
    few = queries()
    for number in range(6):
        builders.course(f"课程{number}", owner_organization=(city.root, city.county_a)[number % 2])
    assert queries() == few
