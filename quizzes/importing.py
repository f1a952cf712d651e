"""The 题库 import: a course's questions from one spreadsheet, on the members import engine.

The same rules as rosters (members.importing.Importer): a dry run with per-row errors in
Chinese, then all rows or none; a question is known by its text within its course, so importing
the same file again changes nothing. The course is named by the upload, not the file: every row
carries it, and the plan checks that the uploader may change that course.
"""

import dataclasses
import re
import unicodedata
from functools import partial

from django.utils.translation import gettext as _

from core.downloads import without_invisible
from core.tabular import Column, ExportWorkbook, clean_text
from courses.models import CoursePage
from members.importing import Importer
from members.models import Role, SpreadsheetImport

from .models import Choice, Question, check_choices

OPTION_LETTERS = "ABCDEF"
QUESTION_COLUMNS = [
    Column("kind", "题型", required=True, aliases=("题目类型", "类型")),
    Column("text", "题目", required=True, aliases=("题干", "试题", "题目内容")),
    *(
        Column(f"option_{letter}", f"选项{letter}", aliases=(f"{letter}",))
        for letter in OPTION_LETTERS
    ),
    Column("answer", "答案", required=True, aliases=("正确答案", "参考答案")),
    Column("explanation", "解析", aliases=("答案解析", "试题解析", "说明")),
]
KIND_VALUES = {
    "单选": Question.Kind.SINGLE,
    "单选题": Question.Kind.SINGLE,
    "单项选择": Question.Kind.SINGLE,
    "单项选择题": Question.Kind.SINGLE,
    "多选": Question.Kind.MULTIPLE,
    "多选题": Question.Kind.MULTIPLE,
    "多项选择": Question.Kind.MULTIPLE,
    "多项选择题": Question.Kind.MULTIPLE,
    "判断": Question.Kind.TRUE_FALSE,
    "判断题": Question.Kind.TRUE_FALSE,
}
KIND_LABELS = {
    Question.Kind.SINGLE: "单选",
    Question.Kind.MULTIPLE: "多选",
    Question.Kind.TRUE_FALSE: "判断",
}
TRUE_VALUES = {"对", "正确", "是", "√", "✓", "T", "TRUE", "Y"}
FALSE_VALUES = {"错", "错误", "否", "×", "✗", "X", "F", "FALSE", "N"}
# The two options of every true-or-false question, in this order.
TRUE_FALSE_OPTIONS = ("正确", "错误")


def _text(value) -> str:
    """Question and option text as typed: ends trimmed, runs of spaces made one. Not NFKC
    (core.tabular.clean_text): it would turn Chinese punctuation (？，) into ASCII."""
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return " ".join(without_invisible(str(value)).split())


SEPARATORS = re.compile(r"[\s,，、;；/]+")


def _parse_rows(table, plan, *, course_id):
    rows = []
    seen = {}
    for number, values in table.rows:
        ok = True
        text = _text(values.get("text"))
        kind_text = clean_text(values.get("kind")).replace(" ", "")
        kind = KIND_VALUES.get(kind_text)
        row = {"row": number, "course_id": course_id, "text": text, "name": text[:40]}
        if not text:
            plan.error(number, "题目", "", _("The question is empty."))
            ok = False
        elif text in seen:
            plan.error(
                number,
                "题目",
                text[:40],
                _("Duplicate question in this file (same as row %(row)d).") % {"row": seen[text]},
            )
            ok = False
        else:
            seen[text] = number
        if kind is None:
            plan.error(number, "题型", kind_text, _("Kind must be 单选, 多选 or 判断."))
            continue
        row["kind"] = str(kind)
        answer = unicodedata.normalize("NFKC", clean_text(values.get("answer"))).upper()
        if not answer:
            plan.error(number, "答案", "", _("The answer is empty."))
            continue
        if kind == Question.Kind.TRUE_FALSE:
            if answer in TRUE_VALUES:
                truth = True
            elif answer in FALSE_VALUES:
                truth = False
            else:
                plan.error(number, "答案", answer, _("Write 对 or 错 as the answer."))
                continue
            row["choices"] = [[TRUE_FALSE_OPTIONS[0], truth], [TRUE_FALSE_OPTIONS[1], not truth]]
        else:
            options = {}
            for letter in OPTION_LETTERS:
                option = _text(values.get(f"option_{letter}"))
                if option:
                    options[letter] = option
            letters = [part for part in SEPARATORS.split(answer) if part]
            if len(letters) == 1 and len(letters[0]) > 1 and letters[0].isalpha():
                letters = list(letters[0])  # "AC"
            unknown = [x for x in letters if x not in options]
            if unknown:
                plan.error(
                    number,
                    "答案",
                    answer,
                    _("The answer names options that are empty or do not exist: %(letters)s.")
                    % {"letters": "、".join(unknown)},
                )
                continue
            row["choices"] = [[option, letter in letters] for letter, option in options.items()]
            for message in check_choices(kind, row["choices"]):
                plan.error(number, "答案", answer, message)
                ok = False
            if any(len(option) > 300 for option in options.values()):
                plan.error(number, "选项", "", _("An option is longer than 300 characters."))
                ok = False
        row["explanation"] = _text(values.get("explanation"))
        if ok:
            rows.append(row)
    return rows


def _may_change(owner, roots) -> bool:
    """members.access.may_change_content, on the roots the engine hands the plan."""
    if roots is None:
        return True
    if owner is None:
        return any(root.depth == 1 for root in roots)
    return any(root.contains(owner) for root in roots)


def _plan_rows(rows, roots, plan):
    courses = {
        course.pk: course
        for course in CoursePage.objects.filter(
            pk__in={row["course_id"] for row in rows}
        ).select_related("owner_organization")
    }
    existing = {
        (q.course_id, q.text): q
        for q in Question.objects.filter(course_id__in=list(courses)).prefetch_related("choices")
    }
    for row in rows:
        course = courses.get(row["course_id"])
        if course is None or not _may_change(course.owner_organization, roots):
            plan.error(
                row["row"], "题目", row["name"], _("You may not change this course's questions.")
            )
            continue
        question = existing.get((course.pk, row["text"]))
        if question is None:
            plan.actions.append((row, "new", None, ["kind", "choices", "explanation"]))
            continue
        changed = []
        if question.kind != row["kind"]:
            changed.append("kind")
        if question.explanation != row["explanation"]:
            changed.append("explanation")
        current = [[c.text, c.is_correct] for c in question.choices.all()]
        if current != [list(choice) for choice in row["choices"]]:
            changed.append("choices")
        plan.actions.append((row, "changed" if changed else "unchanged", question, changed))


def _write_rows(plan, now) -> dict:
    question_ids = []
    for row, action, question, _fields in plan.actions:
        if action == "unchanged":
            continue
        if question is None:
            question = Question.objects.create(
                course_id=row["course_id"],
                kind=row["kind"],
                text=row["text"],
                explanation=row["explanation"],
            )
            current = []
        else:
            question.kind = row["kind"]
            question.explanation = row["explanation"]
            question.save(update_fields=["kind", "explanation", "updated_at"])
            current = list(question.choices.all())
        # Options are changed in place, position by position, so open attempts keep their ids.
        for position, (text, is_correct) in enumerate(row["choices"]):
            if position < len(current):
                choice = current[position]
                if (choice.text, choice.is_correct) != (text, is_correct):
                    choice.text, choice.is_correct = text, is_correct
                    choice.save(update_fields=["text", "is_correct"])
            else:
                Choice.objects.create(
                    question=question, text=text, is_correct=is_correct, sort_order=position
                )
        for surplus in current[len(row["choices"]) :]:
            surplus.delete()
        question_ids.append(question.pk)
    return {"question_ids": question_ids}


QUESTION_IMPORT = Importer(
    kind=SpreadsheetImport.Kind.QUESTIONS,
    columns=QUESTION_COLUMNS,
    parse=None,  # bound to the course by questions_check
    plan=_plan_rows,
    write=_write_rows,
    roles=(Role.TRAINER,),
    event="question_import",
)


def questions_check(*, course, data: bytes, file_name: str, user=None) -> SpreadsheetImport:
    """Dry run of a 题库 file for ``course``: every row checked, nothing written.

    Raises TableError when the file as a whole cannot be read."""
    importer = dataclasses.replace(QUESTION_IMPORT, parse=partial(_parse_rows, course_id=course.pk))
    return importer.check(data=data, file_name=file_name, user=user)


def questions_apply(*, spreadsheet_import, user=None, request=None) -> dict:
    """Apply a checked 题库 import: all rows or none (ImportRejected, ImportAlreadyApplied)."""
    return QUESTION_IMPORT.apply(spreadsheet_import=spreadsheet_import, user=user, request=request)


def questions_template() -> bytes:
    workbook = ExportWorkbook()
    sheet = workbook.sheet("题库", widths=(8, 40, 20, 20, 20, 20, 20, 20, 10, 40))
    sheet.append([c.header for c in QUESTION_COLUMNS])
    sheet.append(
        [
            "单选",
            "党的最高理想和最终目标是什么？",
            "实现共产主义",
            "全面建成小康社会",
            "",
            "",
            "",
            "",
            "A",
            "党章总纲：党的最高理想和最终目标是实现共产主义。",
        ]
    )
    notes = workbook.sheet("填写说明")
    for line in (
        ("列", "说明", "示例"),
        ("题型", "必填：单选 / 多选 / 判断", "单选"),
        ("题目", "必填；同一课程内题目不重复，再次导入同一题目即修改该题", ""),
        ("选项A～选项F", "单选、多选至少两个选项；判断题不填选项", ""),
        ("答案", "必填：单选填一个字母；多选填多个字母，如 AC 或 A、C；判断填 对 / 错", "A"),
        ("解析", "选填，答题后显示给党员", ""),
    ):
        notes.append(line)
    return workbook.to_bytes()
