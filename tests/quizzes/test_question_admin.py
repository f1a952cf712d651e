from quizzes.models import Question

from ..courses import builders as course_builders
from . import builders


def _question_post(course, choices, kind="single", text="新题"):
    data = {
        "course": course.pk,
        "kind": kind,
        "text": text,
        "explanation": "解析",
        "choices-TOTAL_FORMS": str(len(choices)),
        "choices-INITIAL_FORMS": "0",
        "choices-MIN_NUM_FORMS": "2",
        "choices-MAX_NUM_FORMS": "6",
    }
    for i, (option, correct) in enumerate(choices):
        data[f"choices-{i}-text"] = option
        data[f"choices-{i}-ORDER"] = str(i + 1)
        data[f"choices-{i}-id"] = ""
        if correct:
            data[f"choices-{i}-is_correct"] = "on"
    return data


def test_a_trainer_adds_a_question_with_its_options(city, client_for):
    course = course_builders.course(owner_organization=city.county_a)
    client = client_for(city.trainer_a)
    response = client.post(
        "/admin/question_banks/new/", _question_post(course, [("甲", True), ("乙", False)])
    )
    assert response.status_code == 302, response.content.decode()[:3000]
    question = Question.objects.get(text="新题")
    assert [(c.text, c.is_correct) for c in question.choices.all()] == [("甲", True), ("乙", False)]


def test_a_single_choice_question_needs_exactly_one_correct_option(city, client_for):
    course = course_builders.course(owner_organization=city.county_a)
    client = client_for(city.trainer_a)
    response = client.post(
        "/admin/question_banks/new/", _question_post(course, [("甲", True), ("乙", True)])
    )
    assert response.status_code == 200
    assert "请只标出一个正确选项。" in response.content.decode()
    assert not Question.objects.exists()


def test_a_trainer_sees_but_never_changes_another_levels_questions(city, client_for):
    theirs = course_builders.course(title="他县课程", owner_organization=city.county_b)
    city_wide = course_builders.course(title="市级课程", owner_organization=city.root)
    other = builders.question(theirs, "他县的题", ["甲", "乙"], {"甲"})
    shared = builders.question(city_wide, "市里的题", ["甲", "乙"], {"甲"})
    client = client_for(city.trainer_a)
    listing = client.get("/admin/question_banks/").content.decode()
    assert "市里的题" in listing and "他县的题" not in listing
    assert client.get(f"/admin/question_banks/edit/{other.pk}/").status_code == 404
    assert client.get(f"/admin/question_banks/edit/{shared.pk}/").status_code == 404
    # Nor can she add one to a course she may not change.
    response = client.post(
        "/admin/question_banks/new/", _question_post(theirs, [("甲", True), ("乙", False)])
    )
    assert response.status_code == 200
    assert not Question.objects.filter(text="新题").exists()
    # The city's trainer changes the city's.
    assert (
        client_for(city.trainer).get(f"/admin/question_banks/edit/{shared.pk}/").status_code == 200
    )
