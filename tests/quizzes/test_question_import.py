import pytest
from auditlog.models import LogEntry

from core.tabular import TableError
from members.importing import ImportAlreadyApplied, ImportRejected
from quizzes import importing
from quizzes.models import Question

from ..courses import builders as course_builders
from ..members.spreadsheets import csv_bytes, xlsx

HEADER = ["题型", "题目", "选项A", "选项B", "选项C", "选项D", "答案", "解析"]
GOOD = [
    ["单选", "党的最高理想是什么？", "实现共产主义", "发家致富", "", "", "A", "党章总纲"],
    [
        "多选题",
        "  四个意识包括  ",
        "政治意识",
        "大局意识",
        "核心意识",
        "看齐意识",
        "a、b，c；D",
        "",
    ],
    ["判断", "党员应当按期交纳党费。", "", "", "", "", "√", "党章第四条"],
    ["单项选择题", "全角答案", "甲", "乙", "", "", "Ｂ", ""],
]


def check(course, rows, user=None, name="bank.xlsx"):
    data = xlsx([HEADER, *rows]) if name.endswith(".xlsx") else csv_bytes([HEADER, *rows])
    return importing.questions_check(course=course, data=data, file_name=name, user=user)


@pytest.fixture
def course(city):
    return course_builders.course(owner_organization=city.county_a)


def test_messy_file_imports_every_kind(course):
    record = check(course, GOOD)
    assert record.report["counts"]["new"] == 4
    assert not Question.objects.exists()  # a dry run writes nothing
    importing.questions_apply(spreadsheet_import=record)
    multi = Question.objects.get(text="四个意识包括")
    assert multi.kind == Question.Kind.MULTIPLE
    assert [c.is_correct for c in multi.choices.all()] == [True, True, True, True]
    tf = Question.objects.get(kind=Question.Kind.TRUE_FALSE)
    assert [(c.text, c.is_correct) for c in tf.choices.all()] == [("正确", True), ("错误", False)]
    assert tf.explanation == "党章第四条"
    full_width = Question.objects.get(text="全角答案")
    assert [c.text for c in full_width.choices.all() if c.is_correct] == ["乙"]


def test_every_row_error_is_reported_in_chinese_and_nothing_imports(course):
    record = check(
        course,
        [
            GOOD[0],
            ["问答", "不支持的题型", "", "", "", "", "A", ""],
            ["单选", "", "甲", "乙", "", "", "A", ""],
            ["单选", "答案指向空选项", "甲", "乙", "", "", "C", ""],
            ["单选", "单选两个答案", "甲", "乙", "", "", "AB", ""],
            ["判断", "判断乱写", "", "", "", "", "也许", ""],
            ["单选", "党的最高理想是什么？", "甲", "乙", "", "", "A", ""],
            ["单选", "只有一个选项", "甲", "", "", "", "A", ""],
        ],
    )
    by_row = {e["row"]: (e["column"], e["message"]) for e in record.report["errors"]}
    assert sorted(by_row) == [3, 4, 5, 6, 7, 8, 9]
    assert by_row[3] == ("题型", "题型须为单选、多选或判断。")
    assert by_row[8][1] == "与本文件第 2 行的题目重复。"
    assert "选项" in by_row[5][1]
    with pytest.raises(ImportRejected):
        importing.questions_apply(spreadsheet_import=record)
    assert not Question.objects.exists()


def test_reimporting_the_same_file_changes_nothing(course):
    importing.questions_apply(spreadsheet_import=check(course, GOOD))
    choice_ids = sorted(Question.objects.values_list("choices__pk", flat=True))
    again = check(course, GOOD, name="bank.csv")
    assert again.report["counts"] == {
        "new": 0,
        "changed": 0,
        "unchanged": 4,
        "errors": 0,
        "total": 4,
    }
    importing.questions_apply(spreadsheet_import=again)
    assert sorted(Question.objects.values_list("choices__pk", flat=True)) == choice_ids


def test_a_changed_answer_updates_the_question_in_place(course):
    importing.questions_apply(spreadsheet_import=check(course, GOOD))
    question = Question.objects.get(text="党的最高理想是什么？")
    ids = [c.pk for c in question.choices.all()]
    changed = [["单选", "党的最高理想是什么？", "实现共产主义", "发家致富", "", "", "B", "改"]]
    record = check(course, changed)
    assert record.report["changes"][0]["fields"] == ["explanation", "choices"]
    importing.questions_apply(spreadsheet_import=record)
    assert [(c.pk, c.is_correct) for c in question.choices.all()] == [
        (ids[0], False),
        (ids[1], True),
    ]


def test_applying_twice_changes_nothing_and_is_audited(course, city):
    record = check(course, GOOD, user=city.trainer_a)
    importing.questions_apply(spreadsheet_import=record, user=city.trainer_a)
    with pytest.raises(ImportAlreadyApplied):
        importing.questions_apply(spreadsheet_import=record, user=city.trainer_a)
    assert Question.objects.count() == 4
    entry = LogEntry.objects.get(additional_data__event="question_import")
    assert entry.actor == city.trainer_a
    assert len(entry.additional_data["question_ids"]) == 4


def test_a_trainer_cannot_import_into_a_course_she_may_not_change(city):
    sibling = course_builders.course(title="他县课程", owner_organization=city.county_b)
    record = check(sibling, GOOD, user=city.trainer_a)
    assert record.report["counts"]["errors"] == 4
    assert record.report["errors"][0]["message"] == "你无权修改该课程的题库。"


def test_an_unreadable_file_is_refused_whole(course):
    with pytest.raises(TableError):
        importing.questions_check(
            course=course, data=xlsx([["姓名", "手机"], ["a", "b"]]), file_name="x.xlsx"
        )


def test_the_template_imports_its_own_example(course):
    record = importing.questions_check(
        course=course, data=importing.questions_template(), file_name="题库模板.xlsx"
    )
    assert record.report["counts"]["new"] == 1
    assert record.report["errors"] == []


def test_import_pages_check_then_apply(course, city, client_for):
    client = client_for(city.trainer_a)
    assert client.get("/quizzes/import/template/").status_code == 200
    response = client.post(
        "/quizzes/import/",
        {"course": course.pk, "file": _upload(xlsx([HEADER, *GOOD]))},
    )
    assert response.status_code == 302
    detail = client.get(response["Location"])
    assert "确认导入" in detail.content.decode()
    client.post(response["Location"] + "apply/")
    assert Question.objects.filter(course=course).count() == 4
    # Someone else's import is not even there for a member or another trainer.
    assert client_for(city.member_a.user).get(response["Location"]).status_code == 404


def _upload(data, name="bank.xlsx"):
    from django.core.files.uploadedfile import SimpleUploadedFile

    return SimpleUploadedFile(name, data)
