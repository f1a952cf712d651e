"""The spreadsheet import engine: rosters and organisations, from one file each.

A file is read (core.tabular), every row checked, and the dry run kept as a
``SpreadsheetImport`` with its per-row error report; applying it writes all rows or none,
after checking them again against the database as it is then. The empty templates and the
roster export use the same columns, so an exported roster imports back unchanged.
"""

import hashlib
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date

from django.contrib.auth import get_user_model
from django.contrib.auth.hashers import make_password
from django.db import transaction
from django.dispatch import Signal
from django.utils import timezone
from django.utils.translation import gettext as _

from core.audit import audit_event
from core.planner import planner_statistics_refresh
from core.tabular import (
    Column,
    ExportWorkbook,
    clean_name,
    clean_text,
    code_text,
    parse_date,
    read_table,
)

from . import access
from .models import (
    ORGANIZATION_CODE_RE,
    Member,
    Organization,
    Role,
    SpreadsheetImport,
    normalize_phone,
    validate_organization_code,
)
from .services import chunks, free_usernames

ROSTER_COLUMNS = [
    Column("name", "姓名", required=True),
    Column("phone", "手机号码", required=True, aliases=("手机号", "手机", "联系电话", "电话号码")),
    Column("org_code", "党组织编码", required=True, aliases=("组织编码", "所在党组织编码")),
    Column("gender", "性别"),
    Column("status", "党员状态", aliases=("党员类型",)),
    Column("position", "人员类别", aliases=("职务",)),
    Column("joined_on", "入党日期", aliases=("入党时间",)),
    Column("position_since", "任职日期", aliases=("任职时间", "任现职日期", "任现职时间")),
    Column(
        "activity_org_code",
        "流动党员活动地编码",
        aliases=("活动地党组织编码", "流入地党组织编码", "活动地编码"),
    ),
    Column("is_retired", "离退休", aliases=("是否离退休",)),
    Column("limited_mobility", "行动不便", aliases=("是否行动不便", "老弱病残")),
]
ORG_COLUMNS = [
    Column("code", "党组织编码", required=True, aliases=("组织编码",)),
    Column("name", "党组织名称", required=True, aliases=("组织名称",)),
    Column("parent_code", "上级党组织编码", required=True, aliases=("上级组织编码",)),
    Column("kind", "组织类别", aliases=("组织类型",)),
    Column("domain", "所属领域", aliases=("领域",)),
]
ROSTER_HEADERS = {c.key: c.header for c in ROSTER_COLUMNS}
ORG_HEADERS = {c.key: c.header for c in ORG_COLUMNS}

GENDER_VALUES = {"男": "male", "女": "female", "male": "male", "female": "female"}
STATUS_VALUES = {
    "正式党员": Member.Status.FULL,
    "正式": Member.Status.FULL,
    "预备党员": Member.Status.PROBATIONARY,
    "预备": Member.Status.PROBATIONARY,
    "入党积极分子": Member.Status.ACTIVIST,
    "积极分子": Member.Status.ACTIVIST,
    "发展对象": Member.Status.CANDIDATE,
}
POSITION_VALUES = {
    "普通党员": Member.Position.MEMBER,
    "党员": Member.Position.MEMBER,
    "书记": Member.Position.SECRETARY,
    "支部书记": Member.Position.SECRETARY,
    "党组织书记": Member.Position.SECRETARY,
    "副书记": Member.Position.DEPUTY_SECRETARY,
    "支部副书记": Member.Position.DEPUTY_SECRETARY,
    "支委委员": Member.Position.COMMITTEE,
    "支委": Member.Position.COMMITTEE,
    "委员": Member.Position.COMMITTEE,
    "党务工作者": Member.Position.PARTY_WORKER,
    "专职党务工作者": Member.Position.PARTY_WORKER,
    "党建指导员": Member.Position.INSTRUCTOR,
}
YES_NO_VALUES = {"是": True, "否": False, "y": True, "n": False, "yes": True, "no": False}
# What clears a mobile member's place of activity (an empty cell leaves it as it is).
NO_ACTIVITY_ORG = {"无", "否", "-", "—"}
KIND_VALUES = {
    "党委": Organization.Kind.COMMITTEE,
    "党工委": Organization.Kind.COMMITTEE,
    "党总支": Organization.Kind.GENERAL_BRANCH,
    "总支": Organization.Kind.GENERAL_BRANCH,
    "党支部": Organization.Kind.BRANCH,
    "支部": Organization.Kind.BRANCH,
}
DOMAIN_VALUES = {
    "农村": Organization.Domain.RURAL,
    "社区": Organization.Domain.COMMUNITY,
    "城市社区": Organization.Domain.COMMUNITY,
    "机关": Organization.Domain.ORGAN,
    "事业单位": Organization.Domain.INSTITUTION,
    "国有企业": Organization.Domain.STATE_ENTERPRISE,
    "国企": Organization.Domain.STATE_ENTERPRISE,
    "非公企业": Organization.Domain.PRIVATE_ENTERPRISE,
    "非公有制企业": Organization.Domain.PRIVATE_ENTERPRISE,
    "社会组织": Organization.Domain.SOCIAL,
    "学校": Organization.Domain.SCHOOL,
    "其他": Organization.Domain.OTHER,
}
# The labels the roster export writes, so an exported file imports unchanged.
GENDER_LABELS = {"male": "男", "female": "女"}
STATUS_LABELS = {
    Member.Status.FULL: "正式党员",
    Member.Status.PROBATIONARY: "预备党员",
    Member.Status.ACTIVIST: "入党积极分子",
    Member.Status.CANDIDATE: "发展对象",
}
POSITION_LABELS = {
    Member.Position.MEMBER: "普通党员",
    Member.Position.SECRETARY: "书记",
    Member.Position.DEPUTY_SECRETARY: "副书记",
    Member.Position.COMMITTEE: "支委委员",
    Member.Position.PARTY_WORKER: "党务工作者",
    Member.Position.INSTRUCTOR: "党建指导员",
}
KIND_LABELS = {v: k for k, v in KIND_VALUES.items() if k in {"党委", "党总支", "党支部"}}
DOMAIN_LABELS = {
    v: k for k, v in DOMAIN_VALUES.items() if k not in {"城市社区", "国企", "非公有制企业"}
}


class ImportRejected(Exception):
    """The import has errors now; nothing was changed. ``report`` says which rows."""

    def __init__(self, report):
        super().__init__("import rejected")
        self.report = report


class ImportAlreadyApplied(Exception):
    """A second confirmation of the same import: it was applied once and stays so."""


def _in_scope(organization, roots) -> bool:
    return roots is None or any(root.contains(organization) for root in roots)


def _fetch_by(model_qs, field_name, values):
    found = {}
    for chunk in chunks(set(values)):
        for obj in model_qs.filter(**{f"{field_name}__in": chunk}):
            found[getattr(obj, field_name)] = obj
    return found


@dataclass
class Plan:
    errors: list = field(default_factory=list)
    # (row, "new" | "changed" | "unchanged", existing object or None, changed field names)
    actions: list = field(default_factory=list)
    missing: list = field(default_factory=list)

    def error(self, row, column, value, message):
        self.errors.append(
            {
                "row": row,
                "column": column,
                "value": "" if value is None else str(value),
                "message": str(message),
            }
        )

    def report(self):
        counts = {"new": 0, "changed": 0, "unchanged": 0}
        for _row, action, _obj, _fields in self.actions:
            counts[action] += 1
        counts["errors"] = len({e["row"] for e in self.errors})
        counts["total"] = len(self.actions) + counts["errors"]
        return {
            "counts": counts,
            "errors": sorted(self.errors, key=lambda e: e["row"]),
            "missing": self.missing,
            "changes": [
                {
                    "row": row["row"],
                    "label": row.get("name", ""),
                    "action": action,
                    "fields": fields,
                }
                for row, action, _obj, fields in self.actions
                if action != "unchanged"
            ][:500],
        }


# --- Roster ------------------------------------------------------------------------------------


def _parse_roster_rows(table, plan):
    """Cell-level checks that need no database: returns the normalised rows."""
    rows = []
    seen_phones = {}
    for number, values in table.rows:
        row = {"row": number}
        ok = True
        row["name"] = clean_name(values.get("name"))
        if not row["name"]:
            plan.error(number, "姓名", values.get("name"), _("Name is empty."))
            ok = False
        elif len(row["name"]) > 50:
            plan.error(number, "姓名", row["name"], _("Name is longer than 50 characters."))
            ok = False
        raw_phone = values.get("phone")
        row["phone"] = normalize_phone(raw_phone)
        if not row["phone"]:
            if clean_text(raw_phone):
                message = _("Not a valid mainland mobile number (11 digits starting with 1).")
            else:
                message = _("Mobile number is empty.")
            plan.error(number, "手机号码", raw_phone, message)
            ok = False
        elif row["phone"] in seen_phones:
            plan.error(
                number,
                "手机号码",
                raw_phone,
                _("Duplicate mobile number in this file (same as row %(row)d).")
                % {"row": seen_phones[row["phone"]]},
            )
            ok = False
        else:
            seen_phones[row["phone"]] = number
        row["org_code"] = code_text(values.get("org_code"))
        if not row["org_code"]:
            plan.error(number, "党组织编码", "", _("Organisation code is empty."))
            ok = False
        for key, mapping, header, message in (
            ("gender", GENDER_VALUES, "性别", _("Gender must be 男 or 女.")),
            (
                "status",
                STATUS_VALUES,
                "党员状态",
                _("Status must be 正式党员, 预备党员, 入党积极分子 or 发展对象."),
            ),
            (
                "position",
                POSITION_VALUES,
                "人员类别",
                _("Category must be 普通党员, 书记, 副书记, 支委委员, 党务工作者 or 党建指导员."),
            ),
            ("is_retired", YES_NO_VALUES, "离退休", _("Write 是 or 否.")),
            ("limited_mobility", YES_NO_VALUES, "行动不便", _("Write 是 or 否.")),
        ):
            text = clean_text(values.get(key)).replace(" ", "")
            if not text:
                row[key] = None
            elif text.lower() in mapping or text in mapping:
                value = mapping.get(text, mapping.get(text.lower()))
                row[key] = value if isinstance(value, bool) else str(value)
            else:
                plan.error(number, header, text, message)
                ok = False
        try:
            joined = parse_date(values.get("joined_on"))
            if joined is not None and (joined > date.today() or joined.year < 1921):
                raise ValueError(joined)
            row["joined_on"] = joined.isoformat() if joined else None
        except (ValueError, OverflowError):
            plan.error(
                number,
                "入党日期",
                values.get("joined_on"),
                _("Not a valid date (for example 2021-07-01, 2021/7/1 or 2021年7月1日)."),
            )
            ok = False
        try:
            since = parse_date(values.get("position_since"))
            if since is not None and (since > date.today() or since.year < 1949):
                raise ValueError(since)
            row["position_since"] = since.isoformat() if since else None
        except (ValueError, OverflowError):
            plan.error(
                number,
                "任职日期",
                values.get("position_since"),
                _("Not a valid date (for example 2021-07-01, 2021/7/1 or 2021年7月1日)."),
            )
            ok = False
        activity = clean_text(values.get("activity_org_code"))
        if activity in NO_ACTIVITY_ORG:
            row["activity_org_code"] = ""  # clears it
        else:
            row["activity_org_code"] = code_text(activity) or None
        if ok:
            rows.append(row)
    return rows


MEMBER_FIELDS = (
    "name",
    "organization_id",
    "gender",
    "status",
    "position",
    "joined_on",
    "position_since",
    "activity_organization_id",
    "is_retired",
    "limited_mobility",
)
OPTIONAL_CHOICES = ("gender", "status", "position", "is_retired", "limited_mobility")


def _plan_roster(rows, roots, plan):
    """Database checks and what each valid row would do."""
    organizations = _fetch_by(
        Organization.objects.all(),
        "code",
        [r["org_code"] for r in rows]
        + [r["activity_org_code"] for r in rows if r["activity_org_code"]],
    )
    existing = _fetch_by(
        Member.objects.select_related("organization"), "phone", (r["phone"] for r in rows)
    )
    touched_orgs = set()
    for row in rows:
        organization = organizations.get(row["org_code"])
        if organization is None or not _in_scope(organization, roots):
            plan.error(
                row["row"],
                "党组织编码",
                row["org_code"],
                _("Unknown organisation code, or an organisation outside your responsibility."),
            )
            continue
        member = existing.get(row["phone"])
        if member is not None and not _in_scope(member.organization, roots):
            plan.error(
                row["row"],
                "手机号码",
                row["phone"],
                _(
                    "This mobile number belongs to a member of an organisation outside your "
                    "responsibility; ask the organisation department to transfer them."
                ),
            )
            continue
        wanted = {"name": row["name"], "organization_id": organization.pk}
        code = row["activity_org_code"]
        if code:
            place = organizations.get(code)
            if place is None:
                plan.error(row["row"], "流动党员活动地编码", code, _("Unknown organisation code."))
                continue
            if place.pk == organization.pk:
                plan.error(
                    row["row"],
                    "流动党员活动地编码",
                    code,
                    _("A mobile member takes part somewhere other than their own organisation."),
                )
                continue
            wanted["activity_organization_id"] = place.pk
        elif code == "":
            wanted["activity_organization_id"] = None
        touched_orgs.add(organization.pk)
        for key in OPTIONAL_CHOICES:
            if row[key] is not None:
                wanted[key] = row[key]
        for key in ("joined_on", "position_since"):
            if row[key]:
                wanted[key] = date.fromisoformat(row[key])
        if member is None:
            plan.actions.append((row, "new", None, sorted(wanted)))
            continue
        changed = [k for k, v in wanted.items() if getattr(member, k) != v]
        if not member.is_active:
            changed.append("is_active")
        plan.actions.append((row, "changed" if changed else "unchanged", member, changed))

    # Filtered here rather than with phone__in: a file may hold more numbers than a query
    # may bind parameters.
    in_file = {r["phone"] for r in rows}
    members_of_touched = (
        Member.objects.active()
        .filter(organization_id__in=touched_orgs)
        .select_related("organization")
        .order_by("organization__path", "name")
    )
    missing = [m for m in members_of_touched if m.phone not in in_file]
    plan.missing = [
        {"id": m.pk, "name": m.name, "phone": m.masked_phone, "organization": m.organization.name}
        for m in missing
    ]


# Sent inside the import's transaction after bulk writes to members (which send no model
# signals), with ``organization_ids``: the organisations whose members changed (before and after
# a move), or None when the tree itself was reshaped (an organisation moved). Rounds recount
# their coverage counters there (rounds.signals.recount_roster).
roster_changed = Signal()


def _write_roster(plan, now) -> dict:
    """Create the new members (with their accounts) and update the changed ones, in bulk.

    Returns the ids of the members it created or changed, for the audit record."""
    new_rows = [row for row, action, _m, _f in plan.actions if action == "new"]
    member_ids = []
    if new_rows:
        organizations = _fetch_by(
            Organization.objects.all(),
            "code",
            [r["org_code"] for r in new_rows]
            + [r["activity_org_code"] for r in new_rows if r["activity_org_code"]],
        )
        usernames = free_usernames([r["phone"] for r in new_rows])
        User = get_user_model()
        users = User.objects.bulk_create(
            [
                User(
                    username=usernames[r["phone"]],
                    first_name=r["name"][:150],
                    password=make_password(None),
                )
                for r in new_rows
            ],
            batch_size=500,
        )
        created = Member.objects.bulk_create(
            [
                Member(
                    user=u,
                    name=r["name"],
                    phone=r["phone"],
                    organization=organizations[r["org_code"]],
                    gender=r["gender"] or "",
                    status=r["status"] or Member.Status.FULL,
                    position=r["position"] or Member.Position.MEMBER,
                    joined_on=date.fromisoformat(r["joined_on"]) if r["joined_on"] else None,
                    position_since=(
                        date.fromisoformat(r["position_since"]) if r["position_since"] else None
                    ),
                    activity_organization=organizations.get(r["activity_org_code"] or ""),
                    is_retired=bool(r["is_retired"]),
                    limited_mobility=bool(r["limited_mobility"]),
                )
                for u, r in zip(users, new_rows, strict=True)
            ],
            batch_size=500,
        )
        member_ids = [m.pk for m in created]
        if None in member_ids:  # a backend that returns no primary keys from bulk_create
            fetched = _fetch_by(Member.objects.all(), "phone", (r["phone"] for r in new_rows))
            member_ids = [m.pk for m in fetched.values()]
    touched = {organizations[r["org_code"]].pk for r in new_rows} if new_rows else set()
    changed = [(row, m) for row, action, m, _f in plan.actions if action == "changed"]
    touched.update(m.organization_id for _r, m in changed)  # where they were
    if changed:
        organizations = _fetch_by(
            Organization.objects.all(),
            "code",
            [r["org_code"] for r, _m in changed]
            + [r["activity_org_code"] for r, _m in changed if r["activity_org_code"]],
        )
        for row, member in changed:
            member.name = row["name"]
            member.organization = organizations[row["org_code"]]
            for key in OPTIONAL_CHOICES:
                if row[key] is not None:
                    setattr(member, key, row[key])
            for key in ("joined_on", "position_since"):
                if row[key]:
                    setattr(member, key, date.fromisoformat(row[key]))
            if row["activity_org_code"] is not None:
                member.activity_organization = organizations.get(row["activity_org_code"])
            member.is_active = True
            member.updated_at = now
        Member.objects.bulk_update(
            [m for _r, m in changed],
            [*MEMBER_FIELDS, "is_active", "updated_at"],
            batch_size=500,
        )
        member_ids += [m.pk for _r, m in changed]
        touched.update(m.organization_id for _r, m in changed)  # where they are now
    if touched:
        roster_changed.send(sender=Member, organization_ids=touched)
    return {"member_ids": member_ids}


# --- Organisations -----------------------------------------------------------------------------


def _visible(text: str) -> str:
    """``text`` for an error report, with control and format characters (which a page or a
    terminal would swallow or obey) written out as escapes, e.g. ``A\\x1b[31m``."""
    return "".join(
        ch.encode("unicode_escape").decode("ascii")
        if unicodedata.category(ch) in ("Cc", "Cf", "Zl", "Zp")
        else ch
        for ch in text
    )


def _parse_org_rows(table, plan):
    rows, seen = [], {}
    for number, values in table.rows:
        row = {"row": number}
        ok = True
        row["code"] = code_text(values.get("code"))
        row["name"] = clean_text(values.get("name"))
        row["parent_code"] = code_text(values.get("parent_code"))
        if not row["code"]:
            plan.error(number, "党组织编码", "", _("Organisation code is empty."))
            ok = False
        elif not ORGANIZATION_CODE_RE.match(row["code"]):
            plan.error(
                number, "党组织编码", _visible(row["code"]), str(validate_organization_code.message)
            )
            ok = False
        elif len(row["code"]) > 40:
            plan.error(number, "党组织编码", row["code"], _("Code is longer than 40 characters."))
            ok = False
        elif row["code"] in seen:
            plan.error(
                number,
                "党组织编码",
                row["code"],
                _("Duplicate organisation code in this file (same as row %(row)d).")
                % {"row": seen[row["code"]]},
            )
            ok = False
        else:
            seen[row["code"]] = number
        if not row["name"]:
            plan.error(number, "党组织名称", "", _("Organisation name is empty."))
            ok = False
        if row["parent_code"] and not ORGANIZATION_CODE_RE.match(row["parent_code"]):
            plan.error(
                number,
                "上级党组织编码",
                _visible(row["parent_code"]),
                str(validate_organization_code.message),
            )
            ok = False
        elif row["code"] and row["code"] == row["parent_code"]:
            plan.error(
                number,
                "上级党组织编码",
                row["parent_code"],
                _("An organisation cannot be its own parent."),
            )
            ok = False
        for key, mapping, header, message in (
            ("kind", KIND_VALUES, "组织类别", _("Kind must be 党委, 党总支 or 党支部.")),
            (
                "domain",
                DOMAIN_VALUES,
                "所属领域",
                _("Domain must be one of %(values)s.")
                % {"values": "、".join(DOMAIN_LABELS.values())},
            ),
        ):
            text = clean_text(values.get(key)).replace(" ", "")
            if not text:
                row[key] = None
            elif text in mapping:
                row[key] = str(mapping[text])
            else:
                plan.error(number, header, text, message)
                ok = False
        if ok:
            rows.append(row)
    return rows


def _plan_orgs(rows, roots, plan):
    codes = {r["code"] for r in rows} | {r["parent_code"] for r in rows if r["parent_code"]}
    existing = _fetch_by(Organization.objects.all(), "code", codes)
    by_code = {r["code"]: r for r in rows}
    placed = set()
    ordered = []
    pending = list(rows)
    # Parents before children: repeatedly take the rows whose parent is known.
    while pending:
        progress = []
        for row in pending:
            parent = row["parent_code"]
            if not parent or parent in placed or (parent in existing and parent not in by_code):
                progress.append(row)
        if not progress:
            break
        for row in progress:
            placed.add(row["code"])
            ordered.append(row)
        pending = [r for r in pending if r["code"] not in placed]
    for row in pending:
        if row["parent_code"] in by_code:
            message = _("The parent codes in this file form a loop.")
        else:
            message = _("Unknown parent organisation code.")
        plan.error(row["row"], "上级党组织编码", row["parent_code"], message)

    for row in ordered:
        current = existing.get(row["code"])
        parent_code = row["parent_code"]
        parent = existing.get(parent_code) if parent_code else None
        if current is not None and not _in_scope(current, roots):
            plan.error(
                row["row"],
                "党组织编码",
                row["code"],
                _("This organisation is outside your responsibility."),
            )
            continue
        if not parent_code:
            if roots is not None or (current is not None and current.depth != 1):
                plan.error(
                    row["row"], "上级党组织编码", "", _("Parent organisation code is empty.")
                )
                continue
        elif parent_code not in by_code and not _in_scope(parent, roots):
            plan.error(
                row["row"],
                "上级党组织编码",
                parent_code,
                _("Unknown parent organisation code, or one outside your responsibility."),
            )
            continue
        if current is None:
            plan.actions.append((row, "new", None, ["name", "parent"]))
            continue
        changed = []
        if current.name != row["name"]:
            changed.append("name")
        for key in ("kind", "domain"):
            if row[key] is not None and getattr(current, key) != row[key]:
                changed.append(key)
        if parent_code:
            current_parent_path = current.path[: -current.steplen]
            parent_path = parent.path if parent is not None else None
            if parent_path != current_parent_path:
                if parent is not None and parent.path.startswith(current.path):
                    plan.error(
                        row["row"],
                        "上级党组织编码",
                        parent_code,
                        _("An organisation cannot move under its own sub-organisation."),
                    )
                    continue
                changed.append("parent")
        plan.actions.append((row, "changed" if changed else "unchanged", current, changed))


def _write_orgs(plan, now) -> dict:
    """Create and change organisations through treebeard, parents before children.

    Returns the ids of the organisations it created or changed, for the audit record."""
    organization_ids = []
    moved = False
    for row, action, current, fields in plan.actions:
        if action == "unchanged":
            continue
        values = {"name": row["name"]}
        for key in ("kind", "domain"):
            if row[key] is not None:
                values[key] = row[key]
        if action == "new":
            if row["parent_code"]:
                parent = Organization.objects.get(code=row["parent_code"])
                created = parent.add_child(code=row["code"], **values)
            else:
                created = Organization.add_root(code=row["code"], **values)
            organization_ids.append(created.pk)
            continue
        current.refresh_from_db()
        for key, value in values.items():
            setattr(current, key, value)
        current.save()
        if "parent" in fields:
            current.move(Organization.objects.get(code=row["parent_code"]), "sorted-child")
            moved = True
        organization_ids.append(current.pk)
    if moved:
        roster_changed.send(sender=Organization, organization_ids=None)
    return {"organization_ids": organization_ids}


@dataclass(frozen=True)
class Importer:
    """One kind of spreadsheet import: how rows are read, checked and written.

    ``check`` is the dry run; ``apply`` writes all rows or none. Both share the rules, so the
    confirmation re-checks exactly what the dry run showed, against the database as it is then.
    """

    kind: str
    columns: list
    parse: Callable  # (table, plan) -> normalised rows
    plan: Callable  # (rows, roots or None, plan) -> None
    write: Callable  # (plan, now) -> {"<kind>_ids": [ids it created or changed]}
    roles: tuple  # the roles whose subtrees bound what a user may import
    event: str

    def roots(self, user):
        return None if user is None else access.role_roots(user, self.roles)

    def check(self, *, data: bytes, file_name: str, user=None) -> SpreadsheetImport:
        table = read_table(data, file_name, self.columns)
        plan = Plan()
        rows = self.parse(table, plan)
        self.plan(rows, self.roots(user), plan)
        return SpreadsheetImport.objects.create(
            kind=self.kind,
            state=SpreadsheetImport.State.CHECKED,
            uploaded_by=user if user is not None and user.is_authenticated else None,
            file_name=file_name[:255],
            file_sha256=hashlib.sha256(data).hexdigest(),
            rows=rows,
            report=plan.report(),
        )

    def apply(self, *, spreadsheet_import: SpreadsheetImport, user=None, request=None) -> dict:
        with transaction.atomic():
            locked = SpreadsheetImport.objects.select_for_update().get(
                pk=spreadsheet_import.pk, kind=self.kind
            )
            if locked.state == SpreadsheetImport.State.APPLIED:
                raise ImportAlreadyApplied
            if locked.report.get("errors"):
                # Rows that failed the cell checks were never stored: applying the rest would
                # be a partial import. A file with any error imports nothing.
                raise ImportRejected(locked.report)
            plan = Plan()
            self.plan(locked.rows, self.roots(user), plan)
            if plan.errors:
                raise ImportRejected(plan.report())
            now = timezone.now()
            affected = self.write(plan, now)
            report = plan.report()
            locked.state = SpreadsheetImport.State.APPLIED
            locked.applied_at = now
            locked.report = report
            locked.save(update_fields=["state", "applied_at", "report"])
            audit_event(
                event=self.event,
                obj=locked,
                actor=user,
                request=request,
                file=locked.file_name,
                **report["counts"],
                **affected,
            )
        planner_statistics_refresh()  # an import is a bulk load (core/planner.py)
        return report


ROSTER_IMPORT = Importer(
    kind=SpreadsheetImport.Kind.ROSTER,
    columns=ROSTER_COLUMNS,
    parse=_parse_roster_rows,
    plan=_plan_roster,
    write=_write_roster,
    roles=access.ROLES_MANAGING_ROSTER,
    event="roster_import",
)
ORGANIZATION_IMPORT = Importer(
    kind=SpreadsheetImport.Kind.ORGANIZATIONS,
    columns=ORG_COLUMNS,
    parse=_parse_org_rows,
    plan=_plan_orgs,
    write=_write_orgs,
    roles=(Role.TRAINER,),
    event="organization_import",
)
IMPORTERS = {importer.kind: importer for importer in (ROSTER_IMPORT, ORGANIZATION_IMPORT)}


def roster_check(*, data: bytes, file_name: str, user=None) -> SpreadsheetImport:
    """Dry run of a roster file: check every row, keep the report and the normalised rows.

    ``user`` None means the system (management command): no scope limit. Raises TableError
    when the file as a whole cannot be read.
    """
    return ROSTER_IMPORT.check(data=data, file_name=file_name, user=user)


def roster_apply(*, spreadsheet_import: SpreadsheetImport, user=None, request=None) -> dict:
    """Apply a checked roster import: all rows or none.

    The rows are checked again against the database as it is now; if any row fails,
    ImportRejected carries the new report and nothing changes. Applying twice raises
    ImportAlreadyApplied and changes nothing.
    """
    return ROSTER_IMPORT.apply(spreadsheet_import=spreadsheet_import, user=user, request=request)


def orgs_check(*, data: bytes, file_name: str, user=None) -> SpreadsheetImport:
    """Dry run of an organisation file (trainers and the command line)."""
    return ORGANIZATION_IMPORT.check(data=data, file_name=file_name, user=user)


def orgs_apply(*, spreadsheet_import: SpreadsheetImport, user=None, request=None) -> dict:
    """Apply a checked organisation import, all rows or none, parents before children."""
    return ORGANIZATION_IMPORT.apply(
        spreadsheet_import=spreadsheet_import, user=user, request=request
    )


# --- Templates and export ----------------------------------------------------------------------


def roster_template() -> bytes:
    """An empty roster workbook with the headers the import reads, and a sheet of notes."""
    workbook = ExportWorkbook()
    sheet = workbook.sheet("党员名册", widths=(12, 16, 16, 8, 12, 12, 14, 14, 18, 8, 8))
    sheet.append([c.header for c in ROSTER_COLUMNS])
    notes = workbook.sheet("填写说明")
    for line in (
        ("列", "说明", "示例"),
        ("姓名", "必填", "张三"),
        ("手机号码", "必填，11位手机号，唯一", "13800138000"),
        ("党组织编码", "必填，党员所在党支部的编码", "C01-01-01-01"),
        ("性别", "男 / 女", "男"),
        ("党员状态", "正式党员 / 预备党员 / 入党积极分子 / 发展对象", "正式党员"),
        ("人员类别", "普通党员 / 书记 / 副书记 / 支委委员 / 党务工作者 / 党建指导员", "普通党员"),
        ("入党日期", "日期，如 2021-07-01 或 2021年7月1日", "2021-07-01"),
        ("任职日期", "选填，担任现职务的日期；新任书记按此计算", "2026-03-01"),
        (
            "流动党员活动地编码",
            "选填，流动党员实际参加活动的党组织编码；填“无”清除",
            "C01-02-01-01",
        ),
        ("离退休", "选填，是 / 否", "否"),
        ("行动不便", "选填，是 / 否（老弱病残，送学上门）", "否"),
        ("说明", "选填列留空表示不修改；入党积极分子、发展对象不计入党员人数", ""),
    ):
        notes.append(line)
    return workbook.to_bytes()


def org_template() -> bytes:
    workbook = ExportWorkbook()
    workbook.sheet("党组织").append([c.header for c in ORG_COLUMNS])
    notes = workbook.sheet("填写说明")
    notes.append(("组织类别", "党委 / 党总支 / 党支部"))
    notes.append(("所属领域", "、".join(DOMAIN_LABELS.values())))
    return workbook.to_bytes()


def roster_export(*, members, user, request=None, scope_label="") -> bytes:
    """The roster ``members`` as .xlsx, in the import's own columns; the export is audit-logged.

    Phone numbers are written in full only for roles that need them (see access.can_see_phone).
    """
    full_phones = access.has_role(user, access.ROLES_SEEING_PHONES)
    workbook = ExportWorkbook()
    sheet = workbook.sheet("党员名册")
    sheet.append([*(c.header for c in ROSTER_COLUMNS), "党组织名称", "在册"])
    count = 0
    for member in members.select_related("organization", "activity_organization").iterator(
        chunk_size=2000
    ):
        phone = (
            member.phone
            if full_phones and access.can_see_phone(user, member)
            else member.masked_phone
        )
        sheet.append(
            [
                member.name,
                phone,
                member.organization.code,
                GENDER_LABELS.get(member.gender, ""),
                STATUS_LABELS.get(member.status, ""),
                POSITION_LABELS.get(member.position, ""),
                member.joined_on,
                member.position_since,
                member.activity_organization.code if member.activity_organization else "",
                "是" if member.is_retired else "否",
                "是" if member.limited_mobility else "否",
                member.organization.name,
                "是" if member.is_active else "否",
            ]
        )
        count += 1
    content = workbook.to_bytes()
    audit_event(
        event="roster_export",
        obj=user,
        actor=user,
        request=request,
        rows=count,
        scope=scope_label,
        full_phones=full_phones,
    )
    return content
