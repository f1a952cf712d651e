"""Writes that span several models: imports, exports, activation, roles."""

import hashlib
import secrets
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from importlib import import_module

from django.conf import settings
from django.contrib.auth import SESSION_KEY, get_user_model
from django.contrib.auth.hashers import make_password
from django.contrib.auth.models import Group, Permission
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import BooleanField, Case, F, Value, When
from django.dispatch import Signal
from django.utils import formats, timezone, translation
from django.utils.translation import gettext as _

from core.audit import FAILED, OK, REFUSED, audit_event
from core.sms import SmsMessage, send_sms
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
    ActivationCode,
    Member,
    Organization,
    Role,
    RoleAssignment,
    RosterImport,
    normalize_phone,
    validate_organization_code,
)

CHUNK = 900  # below every database's limit on bound parameters

ROSTER_COLUMNS = [
    Column("name", "姓名", required=True),
    Column("phone", "手机号码", required=True, aliases=("手机号", "手机", "联系电话", "电话号码")),
    Column("org_code", "党组织编码", required=True, aliases=("组织编码", "所在党组织编码")),
    Column("gender", "性别"),
    Column("status", "党员状态", aliases=("党员类型",)),
    Column("position", "人员类别", aliases=("职务",)),
    Column("joined_on", "入党日期", aliases=("入党时间",)),
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
}
POSITION_VALUES = {
    "普通党员": Member.Position.MEMBER,
    "党员": Member.Position.MEMBER,
    "支部书记": Member.Position.SECRETARY,
    "书记": Member.Position.SECRETARY,
    "支委委员": Member.Position.COMMITTEE,
    "支委": Member.Position.COMMITTEE,
    "委员": Member.Position.COMMITTEE,
}
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
STATUS_LABELS = {Member.Status.FULL: "正式党员", Member.Status.PROBATIONARY: "预备党员"}
POSITION_LABELS = {
    Member.Position.MEMBER: "普通党员",
    Member.Position.SECRETARY: "支部书记",
    Member.Position.COMMITTEE: "支委委员",
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


def _chunks(items, size=CHUNK):
    items = list(items)
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _in_scope(organization, roots) -> bool:
    return roots is None or any(root.contains(organization) for root in roots)


def _fetch_by(model_qs, field_name, values):
    found = {}
    for chunk in _chunks(set(values)):
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
            ("status", STATUS_VALUES, "党员状态", _("Status must be 正式党员 or 预备党员.")),
            (
                "position",
                POSITION_VALUES,
                "人员类别",
                _("Category must be 普通党员, 支部书记 or 支委委员."),
            ),
        ):
            text = clean_text(values.get(key)).replace(" ", "")
            if not text:
                row[key] = None
            elif text.lower() in mapping or text in mapping:
                row[key] = str(mapping.get(text, mapping.get(text.lower())))
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
        if ok:
            rows.append(row)
    return rows


MEMBER_FIELDS = ("name", "organization_id", "gender", "status", "position", "joined_on")


def _plan_roster(rows, roots, plan):
    """Database checks and what each valid row would do."""
    organizations = _fetch_by(Organization.objects.all(), "code", (r["org_code"] for r in rows))
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
        touched_orgs.add(organization.pk)
        wanted = {"name": row["name"], "organization_id": organization.pk}
        for key in ("gender", "status", "position"):
            if row[key] is not None:
                wanted[key] = row[key]
        if row["joined_on"]:
            wanted["joined_on"] = date.fromisoformat(row["joined_on"])
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


def _free_usernames(phones):
    User = get_user_model()
    taken = set()
    for chunk in _chunks(phones):
        taken.update(User.objects.filter(username__in=chunk).values_list("username", flat=True))
    return {p: (p if p not in taken else f"{p}.{secrets.token_hex(3)}") for p in phones}


def _write_roster(plan, now) -> dict:
    """Create the new members (with their accounts) and update the changed ones, in bulk.

    Returns the ids of the members it created or changed, for the audit record."""
    new_rows = [row for row, action, _m, _f in plan.actions if action == "new"]
    member_ids = []
    if new_rows:
        organizations = _fetch_by(
            Organization.objects.all(), "code", (r["org_code"] for r in new_rows)
        )
        usernames = _free_usernames([r["phone"] for r in new_rows])
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
                )
                for u, r in zip(users, new_rows, strict=True)
            ],
            batch_size=500,
        )
        member_ids = [m.pk for m in created]
        if None in member_ids:  # a backend that returns no primary keys from bulk_create
            fetched = _fetch_by(Member.objects.all(), "phone", (r["phone"] for r in new_rows))
            member_ids = [m.pk for m in fetched.values()]
    changed = [(row, m) for row, action, m, _f in plan.actions if action == "changed"]
    if changed:
        organizations = _fetch_by(
            Organization.objects.all(), "code", (r["org_code"] for r, _m in changed)
        )
        for row, member in changed:
            member.name = row["name"]
            member.organization = organizations[row["org_code"]]
            for key in ("gender", "status", "position"):
                if row[key] is not None:
                    setattr(member, key, row[key])
            if row["joined_on"]:
                member.joined_on = date.fromisoformat(row["joined_on"])
            member.is_active = True
            member.updated_at = now
        Member.objects.bulk_update(
            [m for _r, m in changed],
            [*MEMBER_FIELDS, "is_active", "updated_at"],
            batch_size=500,
        )
        member_ids += [m.pk for _r, m in changed]
    return {"member_ids": member_ids}


def members_deactivate(*, member_ids, user=None, request=None) -> int:
    """Mark members inactive (transferred out, deceased): kept on record, out of future rounds."""
    members = Member.objects.filter(pk__in=member_ids, is_active=True).select_related(
        "organization"
    )
    if user is not None:
        members = members.filter(
            pk__in=access.visible_members(user, access.ROLES_MANAGING_ROSTER).values("pk")
        )
    changed = []
    with transaction.atomic():
        for member in members:
            member.is_active = False
            member.save(update_fields=["is_active", "updated_at"])
            changed.append(member)
        if user is not None or changed:
            audit_event(
                event="members_deactivated",
                obj=user if user is not None else changed[0],
                actor=user,
                request=request,
                count=len(changed),
                member_ids=[m.pk for m in changed],
            )
    return len(changed)


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
        organization_ids.append(current.pk)
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

    def check(self, *, data: bytes, file_name: str, user=None) -> RosterImport:
        table = read_table(data, file_name, self.columns)
        plan = Plan()
        rows = self.parse(table, plan)
        self.plan(rows, self.roots(user), plan)
        return RosterImport.objects.create(
            kind=self.kind,
            state=RosterImport.State.CHECKED,
            uploaded_by=user if user is not None and user.is_authenticated else None,
            file_name=file_name[:255],
            file_sha256=hashlib.sha256(data).hexdigest(),
            rows=rows,
            report=plan.report(),
        )

    def apply(self, *, roster_import: RosterImport, user=None, request=None) -> dict:
        with transaction.atomic():
            locked = RosterImport.objects.select_for_update().get(
                pk=roster_import.pk, kind=self.kind
            )
            if locked.state == RosterImport.State.APPLIED:
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
            locked.state = RosterImport.State.APPLIED
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
        return report


ROSTER_IMPORT = Importer(
    kind=RosterImport.Kind.ROSTER,
    columns=ROSTER_COLUMNS,
    parse=_parse_roster_rows,
    plan=_plan_roster,
    write=_write_roster,
    roles=access.ROLES_MANAGING_ROSTER,
    event="roster_import",
)
ORGANIZATION_IMPORT = Importer(
    kind=RosterImport.Kind.ORGANIZATIONS,
    columns=ORG_COLUMNS,
    parse=_parse_org_rows,
    plan=_plan_orgs,
    write=_write_orgs,
    roles=(Role.TRAINER,),
    event="organization_import",
)
IMPORTERS = {importer.kind: importer for importer in (ROSTER_IMPORT, ORGANIZATION_IMPORT)}


def roster_check(*, data: bytes, file_name: str, user=None) -> RosterImport:
    """Dry run of a roster file: check every row, keep the report and the normalised rows.

    ``user`` None means the system (management command): no scope limit. Raises TableError
    when the file as a whole cannot be read.
    """
    return ROSTER_IMPORT.check(data=data, file_name=file_name, user=user)


def roster_apply(*, roster_import: RosterImport, user=None, request=None) -> dict:
    """Apply a checked roster import: all rows or none.

    The rows are checked again against the database as it is now; if any row fails,
    ImportRejected carries the new report and nothing changes. Applying twice raises
    ImportAlreadyApplied and changes nothing.
    """
    return ROSTER_IMPORT.apply(roster_import=roster_import, user=user, request=request)


def orgs_check(*, data: bytes, file_name: str, user=None) -> RosterImport:
    """Dry run of an organisation file (trainers and the command line)."""
    return ORGANIZATION_IMPORT.check(data=data, file_name=file_name, user=user)


def orgs_apply(*, roster_import: RosterImport, user=None, request=None) -> dict:
    """Apply a checked organisation import, all rows or none, parents before children."""
    return ORGANIZATION_IMPORT.apply(roster_import=roster_import, user=user, request=request)


# --- Templates and export ----------------------------------------------------------------------


def roster_template() -> bytes:
    """An empty roster workbook with the headers the import reads, and a sheet of notes."""
    workbook = ExportWorkbook()
    sheet = workbook.sheet("党员名册", widths=(12, 16, 16, 8, 12, 12, 14))
    sheet.append([c.header for c in ROSTER_COLUMNS])
    notes = workbook.sheet("填写说明")
    for line in (
        ("列", "说明", "示例"),
        ("姓名", "必填", "张三"),
        ("手机号码", "必填，11位手机号，唯一", "13800138000"),
        ("党组织编码", "必填，党员所在党支部的编码", "C01-01-01-01"),
        ("性别", "男 / 女", "男"),
        ("党员状态", "正式党员 / 预备党员", "正式党员"),
        ("人员类别", "普通党员 / 支部书记 / 支委委员", "普通党员"),
        ("入党日期", "日期，如 2021-07-01 或 2021年7月1日", "2021-07-01"),
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
    for member in members.select_related("organization").iterator(chunk_size=2000):
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


# --- Activation codes and password resets ------------------------------------------------------


class ActivationError(Exception):
    """The number, the code or the account's state does not allow it; the message is for the
    person at the activation page."""


class PasswordResetRefused(Exception):
    """This user may not reset this member's password; the message says why."""


def activation_codes_issue(*, members, user=None, request=None) -> list[tuple[Member, str]]:
    """New one-time activation codes for those of ``members`` who are on record and whose
    account has never been in use (``MemberQuerySet.never_activated``); their earlier unused
    codes stop working.

    The others are refused here, whoever asks: a slip would hand an account in use (a
    secretary's, a trainer's) to whoever holds it. Such an account gets a new password only
    through ``member_password_reset``. Refused members are listed in the audit record.

    Returns (member, code) pairs for the printed slips, in the order given: the codes are not
    stored in clear.
    """
    members = list(members)
    issued = []
    expires = ActivationCode.expiry_from_now()
    with transaction.atomic():
        eligible = set()
        for chunk in _chunks(m.pk for m in members):
            eligible.update(
                Member.objects.filter(pk__in=chunk)
                .active()
                .never_activated()
                .values_list("pk", flat=True)
            )
        chosen = [m for m in members if m.pk in eligible]
        refused = [m for m in members if m.pk not in eligible]
        for chunk in _chunks(m.pk for m in chosen):
            ActivationCode.objects.filter(member_id__in=chunk).outstanding().update(revoked=True)
        codes = []
        for member in chosen:
            code = ActivationCode.generate_code()
            record = ActivationCode(
                member=member,
                kind=ActivationCode.Kind.ACTIVATION,
                created_by=user,
                expires_at=expires,
            )
            record.set_code(code)
            codes.append(record)
            issued.append((member, code))
        ActivationCode.objects.bulk_create(codes)
        if members:
            details = {}
            if refused:
                details["refused_member_ids"] = [m.pk for m in refused]
            if not chosen:
                details["error"] = _(
                    "These accounts are already activated or in use: they need a password "
                    "reset, not an activation slip."
                )
            audit_event(
                event="activation_codes_issued",
                obj=(chosen or refused)[0].organization,
                actor=user,
                request=request,
                result=OK if chosen else REFUSED,
                count=len(chosen),
                member_ids=[m.pk for m in chosen],
                **details,
            )
    return issued


def _code_fits_account(code: ActivationCode, member: Member, account) -> bool:
    """An activation code is for an account never in use; a reset code for one whose password
    the reset made unusable (and nobody has set since)."""
    if account.has_usable_password():
        return False
    return code.kind == ActivationCode.Kind.RESET or member.activated_at is None


def _count_wrong_code(member: Member) -> None:
    """Count a wrong code against every usable code of ``member``, revoking those that reach
    LUNXUN_ACTIVATION_MAX_FAILURES.

    One UPDATE: the database adds to the stored count, so concurrent wrong tries all count (a
    read-modify-write here lost them), and the statement that reaches the limit also revokes
    (SET reads the row as it was before: failures + 1 >= limit). ``usable()`` stops at the limit
    by itself, so a code is refused there even between two statements.
    """
    limit = settings.LUNXUN_ACTIVATION_MAX_FAILURES
    ActivationCode.objects.usable().filter(member=member).update(
        failures=F("failures") + 1,
        revoked=Case(
            When(failures__gte=limit - 1, then=Value(True)),
            default=Value(False),
            output_field=BooleanField(),
        ),
    )


def member_activate(*, phone: str, code: str, password: str, request=None) -> Member:
    """Set a member's password with the one-time code from a slip (an activation or a reset
    slip); raise ActivationError, or ValidationError for a weak password (the code stays good).

    A wrong code counts against the number's codes (see ``_count_wrong_code``). A right code is
    refused, and revoked, when it does not fit the account (``_code_fits_account``): a slip
    never takes over an account in use. Once the password is set, every other outstanding code
    of the member stops working. Accounts that may not log in (``is_active`` off) are treated
    like unknown numbers.
    """
    generic = _("The mobile number or the activation code is not correct.")
    member = (
        Member.objects.select_related("user")
        .filter(phone=normalize_phone(phone), is_active=True, user__is_active=True)
        .first()
    )
    if member is None:
        raise ActivationError(generic)
    candidates = list(ActivationCode.objects.usable().filter(member=member))
    match = next((c for c in candidates if c.matches(code)), None)
    if match is None:
        # Counted outside any transaction that the error would roll back.
        _count_wrong_code(member)
        raise ActivationError(generic)
    event = "member_activated" if match.kind == ActivationCode.Kind.ACTIVATION else "password_set"
    in_use = _(
        "This account is already in use. Log in with its password, or ask your branch "
        "secretary to reset the password."
    )
    if not _code_fits_account(match, member, member.user):
        ActivationCode.objects.filter(pk=match.pk).update(revoked=True)
        audit_event(
            event=event, obj=member, request=request, result=REFUSED, error=in_use, code=match.pk
        )
        raise ActivationError(in_use)
    validate_password(password, member.user)
    User = get_user_model()
    with transaction.atomic():
        # The account and the member as they are now, the account locked (a row lock on
        # PostgreSQL; SQLite's IMMEDIATE transactions queue writers anyway).
        account = User.objects.select_for_update().get(pk=member.user_id)
        member.refresh_from_db(fields=["activated_at"])
        if not _code_fits_account(match, member, account):
            raise ActivationError(in_use)
        # Claim the code atomically: two submissions of the same slip activate once.
        now = timezone.now()
        claimed = ActivationCode.objects.usable().filter(pk=match.pk).update(used_at=now)
        if not claimed:
            raise ActivationError(generic)
        account.set_password(password)
        account.save(update_fields=["password"])
        if member.activated_at is None:
            member.activated_at = now
            member.save(update_fields=["activated_at", "updated_at"])
        revoked = ActivationCode.objects.filter(member=member).outstanding().update(revoked=True)
        audit_event(
            event=event,
            obj=member,
            actor=account,
            request=request,
            code=match.pk,
            revoked_codes=revoked,
        )
    member.user = account
    return member


def _session_model():
    """The model of the configured session store, or None for one that cannot be listed."""
    store = import_module(settings.SESSION_ENGINE).SessionStore
    return (store, store.get_model_class()) if hasattr(store, "get_model_class") else (store, None)


def user_session_keys(*, user, keep: str | None = None) -> list[str]:
    """The keys of ``user``'s unexpired sessions but ``keep`` (the session of the request
    asking). Sessions are signed, not indexed by user: the unexpired ones are read in chunks
    (a city has as many as people active in the last SESSION_COOKIE_AGE), so call this outside
    a write transaction. With a session engine that cannot be listed (cache, signed cookies)
    there are none to find; Django still refuses a session whose password hash no longer
    matches, which every password change causes."""
    store, model = _session_model()
    if model is None:
        return []
    decoder = store()
    owner = str(user.pk)
    unexpired = model.objects.filter(expire_date__gt=timezone.now()).only(
        "session_key", "session_data"
    )
    return [
        session.session_key
        for session in unexpired.iterator(chunk_size=2000)
        if session.session_key != keep
        and decoder.decode(session.session_data).get(SESSION_KEY) == owner
    ]


def sessions_end(keys) -> int:
    """Delete the sessions ``keys``: each is logged out at its next request. Returns how many
    there were."""
    _store, model = _session_model()
    if model is None:
        return 0
    return sum(model.objects.filter(session_key__in=chunk).delete()[0] for chunk in _chunks(keys))


def member_password_reset(*, member: Member, user, request=None) -> str:
    """Reset ``member``'s password on ``user``'s word, when ``access.can_reset_password`` allows
    it: the current password stops working, every session of the account ends, earlier codes
    are revoked, and a one-time reset code is made for a printed slip, with which the member
    sets a new password at the activation page. The member is told by SMS (the reset was done,
    a slip is coming, and whom to tell if they did not ask), so a reset nobody asked for is
    noticed.

    Audit-logged as "password_reset" (a refusal too, with result "refused"), and the SMS as
    "password_reset_notified" (result "failed" when it could not be sent). Returns the code,
    which is stored hashed only. Raises PasswordResetRefused.
    """
    reason = None
    if not access.can_reset_password(user, member):
        reason = _(
            "You may not reset this password: only for members of your own organisations "
            "whose roles lie within yours, and never your own (change it on the password page)."
        )
    elif not member.is_active:
        reason = _("This member is no longer on record.")
    if reason is not None:
        audit_event(
            event="password_reset",
            obj=member,
            actor=user,
            request=request,
            result=REFUSED,
            error=str(reason),
        )
        raise PasswordResetRefused(reason)
    code = ActivationCode.generate_code()
    # Found before the write transaction; a session started in between still ends, on its next
    # request, because the password hash it carries no longer matches.
    session_keys = user_session_keys(user=member.user)
    User = get_user_model()
    with transaction.atomic():
        account = User.objects.select_for_update().get(pk=member.user_id)
        account.set_unusable_password()
        account.save(update_fields=["password"])
        revoked = ActivationCode.objects.filter(member=member).outstanding().update(revoked=True)
        record = ActivationCode(
            member=member,
            kind=ActivationCode.Kind.RESET,
            created_by=user,
            expires_at=ActivationCode.expiry_from_now(),
        )
        record.set_code(code)
        record.save()
        sessions = sessions_end(session_keys)
        audit_event(
            event="password_reset",
            obj=member,
            actor=user,
            request=request,
            code=record.pk,
            revoked_codes=revoked,
            sessions_ended=sessions,
        )
    member.user = account
    _notify_password_reset(member=member, user=user, request=request)
    return code


def _notify_password_reset(*, member, user, request=None) -> None:
    """The SMS telling ``member`` their password was reset; sent after the reset is committed
    (never holding a transaction open on a gateway), its outcome audit-logged."""
    with translation.override(settings.LANGUAGE_CODE):
        text = _(
            "[Account notice] %(name)s, the password of your training account was reset by "
            "your Party organisation on %(when)s. Your branch secretary will give you a slip "
            "to set a new one at %(url)s. If you did not ask for this, tell your Party "
            "organisation."
        ) % {
            "name": member.name,
            "when": formats.date_format(timezone.localtime(), "SHORT_DATETIME_FORMAT"),
            "url": settings.LUNXUN_SITE_URL.rstrip("/"),
        }
    try:
        sent = send_sms([SmsMessage(phone=member.phone, text=text)], fail_silently=True)
        error = "" if sent else "the SMS backend sent nothing"
    except Exception as failure:  # a gateway's own error: the reset stands, the record says so
        sent, error = 0, f"{type(failure).__name__}: {failure}"
    details = {"error": error} if error else {}
    audit_event(
        event="password_reset_notified",
        obj=member,
        actor=user,
        request=request,
        result=OK if sent else FAILED,
        channel="sms",
        **details,
    )


def password_change_record(*, user, request) -> None:
    """After ``user`` changed their own password (the request's session kept): end their other
    sessions and audit-log it as "password_changed"."""
    ended = sessions_end(user_session_keys(user=user, keep=request.session.session_key))
    audit_event(
        event="password_changed", obj=user, actor=user, request=request, sessions_ended=ended
    )


# --- Members and roles -------------------------------------------------------------------------

TRAINER_GROUP = "培训管理员"
trainer_group_ready = Signal()  # sent with group=…: apps above members grant their permissions


def member_create(*, name, phone, organization, password=None, **fields) -> Member:
    """Create a member and their login account. ``password`` None leaves it unusable
    until the member activates with a code."""
    normalized = normalize_phone(phone)
    if not normalized:
        raise ValidationError({"phone": _("Not a valid mainland mobile number.")})
    User = get_user_model()
    with transaction.atomic():
        username = _free_usernames([normalized])[normalized]
        user = User(username=username, first_name=name[:150])
        user.set_password(password) if password else user.set_unusable_password()
        user.save()
        member = Member(user=user, name=name, phone=normalized, organization=organization, **fields)
        member.full_clean(exclude=["user"])
        member.save()
    return member


def trainer_group() -> Group:
    """The Wagtail group every trainer belongs to: admin access and the members viewsets."""
    group, _created = Group.objects.get_or_create(name=TRAINER_GROUP)
    wanted = Permission.objects.filter(
        content_type__app_label="members",
        codename__in=[
            f"{action}_{model}"
            for action in ("add", "change", "view")
            for model in ("organization", "member", "roleassignment")
        ]
        + ["delete_roleassignment"],
    ) | Permission.objects.filter(content_type__app_label="wagtailadmin", codename="access_admin")
    group.permissions.add(*wanted)
    # Higher apps (courses, rounds) add what trainers need of theirs.
    trainer_group_ready.send(sender=Group, group=group)
    return group


def trainer_group_sync(user):
    """Trainers, and only trainers, are in the trainer group (Wagtail admin access)."""
    is_trainer = RoleAssignment.objects.filter(user=user, role=Role.TRAINER).exists()
    group = trainer_group()
    if is_trainer:
        user.groups.add(group)
    elif user.groups.filter(pk=group.pk).exists():
        # Only a real removal: the account's audit record of its groups stays truthful.
        user.groups.remove(group)


def role_assign(*, user, role: str, organization: Organization) -> RoleAssignment:
    """Give ``user`` the ``role`` over ``organization``'s subtree (idempotent).

    Group membership (Wagtail admin access for trainers) follows through the RoleAssignment
    signals, so admin edits and this service keep it the same way.
    """
    assignment, _created = RoleAssignment.objects.get_or_create(
        user=user, role=role, organization=organization
    )
    return assignment
