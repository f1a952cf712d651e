"""Demo and scale data: a believable small city for `make demo`, and a city of ~300k members
for benchmarks. Deterministic (seeded), idempotent, and written with the same models the
product uses — the scale city by bulk inserts with materialized paths computed up front.
"""

import random
from dataclasses import dataclass
from datetime import date, timedelta

from django.contrib.auth import get_user_model
from django.db import transaction
from django.dispatch import Signal

from . import services
from .models import Member, Organization, Role

SURNAMES = (
    "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘于蒋蔡余杜叶程苏魏吕丁"
    "任沈姚卢姜崔钟谭陆汪范金石廖贾夏韦付方白邹孟熊秦邱江尹薛闫段雷侯龙史陶黎贺顾毛郝龚邵万钱严覃武"
)
GIVEN = (
    "伟芳娜秀英敏静丽强磊军洋勇艳杰娟涛明超秀兰霞平刚桂英华建国建华志强红梅玉兰海燕文博子涵浩然"
    "晓东晓明春梅冬梅国平国强德明德华立新立军永刚永红建平金凤淑珍淑华丽娟丽华雪梅振华振国卫东"
)
# Real rosters contain characters outside the Basic Multilingual Plane and rare ones.
RARE_GIVEN = ("𠮷", "䶮", "赟", "堃", "喆", "淼", "燚", "昇")

DEMO_PASSWORD = "Lunxun@2026"
# Sent after the demo city is in place; receivers return a line to print, or None.
demo_city_seeded = Signal()

COUNTIES = (("城关区", "community"), ("青山县", "rural"))
TOWNSHIPS = {
    "城关区": ("东关街道", "西湖街道", "南门街道"),
    "青山县": ("青山镇", "柳河乡", "石桥镇"),
}
UNITS = {
    "东关街道": ("幸福社区", "朝阳社区"),
    "西湖街道": ("湖滨社区", "翠苑社区"),
    "南门街道": ("文化社区", "区机关工委", "锦绣社区"),
    "青山镇": ("红旗村", "新华村", "柳树村"),
    "柳河乡": ("河东村", "河西村", "新丰村"),
    "石桥镇": ("石桥村", "县第一中学"),
}


def person_name(rng: random.Random) -> str:
    surname = rng.choice(SURNAMES)
    if rng.random() < 0.02:
        return surname + rng.choice(RARE_GIVEN)
    length = 1 if rng.random() < 0.35 else 2
    return surname + "".join(rng.choice(GIVEN) for _ in range(length))


def joined_date(rng: random.Random) -> date:
    return date(1965, 1, 1) + timedelta(days=rng.randrange(0, 365 * 60))


@dataclass
class DemoLogin:
    role: str
    login: str
    password: str
    scope: str


def _org(code, name, parent=None, **fields):
    existing = Organization.objects.filter(code=code).first()
    if existing is not None:
        return existing
    if parent is None:
        return Organization.add_root(code=code, name=name, **fields)
    return Organization.objects.get(pk=parent.pk).add_child(code=code, name=name, **fields)


def _staff_user(username, name, password):
    User = get_user_model()
    user, _created = User.objects.get_or_create(username=username, defaults={"first_name": name})
    user.set_password(password)
    user.save()
    return user


@transaction.atomic
def seed_demo_city() -> list[DemoLogin]:
    """The small demo city: 2 counties, 6 townships, ~30 branches, ~300 members. Idempotent."""
    rng = random.Random(2026)
    city = _org("C01", "示范市委", kind="committee", domain="organ")
    branches = []
    for c, (county_name, _domain) in enumerate(COUNTIES, start=1):
        county = _org(f"C01-{c:02d}", f"{county_name}委", city, kind="committee", domain="organ")
        for t, township in enumerate(TOWNSHIPS[county_name], start=1):
            town = _org(
                f"C01-{c:02d}-{t:02d}",
                f"{township}党工委",
                county,
                kind="committee",
                domain="community" if "街道" in township else "rural",
            )
            for u, unit in enumerate(UNITS[township], start=1):
                unit_domain = (
                    "community"
                    if "社区" in unit
                    else "rural"
                    if "村" in unit
                    else "school"
                    if "学" in unit
                    else "organ"
                )
                unit_code = f"C01-{c:02d}-{t:02d}-{u:02d}"
                unit_org = _org(
                    unit_code,
                    f"{unit}党总支",
                    town,
                    kind="general_branch",
                    domain=unit_domain,
                    is_site=True,
                )
                for b in range(1, 3):
                    label = ("第一党支部", "第二党支部")[b - 1]
                    branches.append(
                        _org(
                            f"{unit_code}-{b:02d}",
                            f"{unit}{label}",
                            unit_org,
                            kind="branch",
                            domain=unit_domain,
                        )
                    )
    members_by_branch = {}
    number = 0
    for branch in branches:
        members_by_branch[branch.code] = []
        for i in range(11):
            number += 1
            phone = f"139{number:08d}"
            position = (
                Member.Position.SECRETARY
                if i == 0
                else Member.Position.COMMITTEE
                if i in (1, 2)
                else Member.Position.MEMBER
            )
            status = Member.Status.PROBATIONARY if i == 10 else Member.Status.FULL
            name = person_name(rng)
            gender = rng.choice(["male", "female"])
            joined = joined_date(rng)
            member = Member.objects.filter(phone=phone).first()
            if member is None:
                member = services.member_create(
                    name=name,
                    phone=phone,
                    organization=branch,
                    status=status,
                    position=position,
                    gender=gender,
                    joined_on=joined,
                )
            members_by_branch[branch.code].append(member)

    _seed_categories(branches, members_by_branch, rng)

    # Logins for each role. The secretary and the demo member are members too.
    community_branch = branches[0]
    community = Organization.objects.get(pk=community_branch.pk).get_parent()
    trainer = _staff_user("trainer", "培训管理员", DEMO_PASSWORD)
    services.role_assign(user=trainer, role=Role.TRAINER, organization=city)
    secretary_member = members_by_branch[community_branch.code][0]
    secretary_user = secretary_member.user
    secretary_user.set_password(DEMO_PASSWORD)
    secretary_user.save()
    services.role_assign(user=secretary_user, role=Role.SECRETARY, organization=community_branch)
    operator = _staff_user("operator", "站点管理员", DEMO_PASSWORD)
    services.role_assign(user=operator, role=Role.OPERATOR, organization=community)
    first_county = Organization.objects.get(code="C01-01")
    county_secretary = _staff_user("county", "区委组织部", DEMO_PASSWORD)
    services.role_assign(user=county_secretary, role=Role.SECRETARY, organization=first_county)
    demo_member = members_by_branch[community_branch.code][3]
    demo_member.user.set_password(DEMO_PASSWORD)
    demo_member.user.save()
    for member in (secretary_member, demo_member):
        if member.activated_at is None:
            Member.objects.filter(pk=member.pk).update(activated_at=member.created_at)
    admin = _staff_user("admin", "系统管理员", DEMO_PASSWORD)
    if not admin.is_superuser:
        admin.is_superuser = admin.is_staff = True
        admin.save()
    return [
        DemoLogin("trainer", "trainer", DEMO_PASSWORD, city.name),
        DemoLogin("secretary", secretary_member.phone, DEMO_PASSWORD, community_branch.name),
        DemoLogin("county secretary", "county", DEMO_PASSWORD, first_county.name),
        DemoLogin("site operator", "operator", DEMO_PASSWORD, community.name),
        DemoLogin("member", demo_member.phone, DEMO_PASSWORD, community_branch.name),
        DemoLogin("superuser", "admin", DEMO_PASSWORD, "—"),
    ]


def _seed_categories(branches, members_by_branch, rng) -> None:
    """The categories the department trains by: secretaries and since when (every third one
    new this year), a retired member and one who cannot easily come in each branch, a mobile
    member of the first branch who takes part at another site, and in each community branch two
    people in training to join (a 发展对象 and an 入党积极分子), who are not counted as members."""
    today = date.today()
    for n, branch in enumerate(branches):
        people = members_by_branch[branch.code]
        since = (
            today - timedelta(days=60 + n)
            if n % 3 == 0
            else today - timedelta(days=365 * (2 + n % 5))
        )
        Member.objects.filter(pk=people[0].pk, position_since__isnull=True).update(
            position_since=since
        )
        Member.objects.filter(pk=people[8].pk).update(limited_mobility=True)
        Member.objects.filter(pk=people[9].pk).update(is_retired=True)
        if branch.domain == Organization.Domain.COMMUNITY:
            for k, status in enumerate((Member.Status.CANDIDATE, Member.Status.ACTIVIST)):
                phone = f"137{n:05d}{k:03d}"
                if not Member.objects.filter(phone=phone).exists():
                    services.member_create(
                        name=person_name(rng),
                        phone=phone,
                        organization=branch,
                        status=status,
                        gender=rng.choice(["male", "female"]),
                    )
    # A mobile member (流动党员) of the first branch, working in another township: they count
    # at home and are ticked at roll call at the site where they are.
    away = next(b for b in branches if not b.path.startswith(branches[0].get_parent().path))
    Member.objects.filter(pk=members_by_branch[branches[0].code][5].pk).update(
        activity_organization=away.get_parent()
    )


# --- Scale city --------------------------------------------------------------------------------

SCALE_ROOT_CODE = "S"


def _scale_shape(members: int):
    """Counties, townships per county, villages per township, branches per village."""
    counties, townships, villages = 12, 16, 12
    target_branches = max(1, members // 22)
    per_village = max(1, -(-target_branches // (counties * townships * villages)))
    if members < 20000:
        counties, townships, villages = 2, 4, 4
        per_village = max(1, -(-target_branches // (counties * townships * villages)))
    return counties, townships, villages, per_village


def seed_scale_city(members: int, stdout=None) -> dict:
    """A city of ``members`` members in ~members/20 organisations, by bulk inserts.

    Paths are computed here rather than through treebeard's add_child (one query per node):
    the tree is built level by level in code order, exactly as add_child would number it.
    Idempotent: a second run finds the scale city and leaves it alone.
    """
    if Organization.objects.filter(code=SCALE_ROOT_CODE).exists():
        return {"created": False}
    rng = random.Random(300000)
    counties, townships, villages, per_village = _scale_shape(members)
    step = Organization.steplen
    last_root = Organization.get_last_root_node()
    root_index = 1 + (int(last_root.path[:step], 36) if last_root else 0)

    def path(parent_path, index):
        return Organization._get_path(parent_path, len(parent_path) // step + 1, index)

    rows = []
    root_path = path("", root_index)
    rows.append(
        Organization(
            path=root_path,
            depth=1,
            numchild=counties,
            code=SCALE_ROOT_CODE,
            name="规模测试市委",
            kind="committee",
            domain="organ",
        )
    )
    branch_rows = []
    for c in range(1, counties + 1):
        c_code = f"S-{c:02d}"
        c_path = path(root_path, c)
        rows.append(
            Organization(
                path=c_path,
                depth=2,
                numchild=townships,
                code=c_code,
                name=f"第{c}区县委",
                kind="committee",
                domain="organ",
            )
        )
        for t in range(1, townships + 1):
            t_code = f"{c_code}-{t:02d}"
            t_path = path(c_path, t)
            rows.append(
                Organization(
                    path=t_path,
                    depth=3,
                    numchild=villages,
                    code=t_code,
                    name=f"第{c}区县第{t}乡镇党委",
                    kind="committee",
                    domain="rural",
                )
            )
            for v in range(1, villages + 1):
                v_code = f"{t_code}-{v:02d}"
                v_path = path(t_path, v)
                rows.append(
                    Organization(
                        path=v_path,
                        depth=4,
                        numchild=per_village,
                        code=v_code,
                        name=f"{c}-{t}-{v}村党总支",
                        kind="general_branch",
                        domain="rural",
                        is_site=True,
                    )
                )
                for b in range(1, per_village + 1):
                    branch = Organization(
                        path=path(v_path, b),
                        depth=5,
                        numchild=0,
                        code=f"{v_code}-{b:02d}",
                        name=f"{c}-{t}-{v}村第{b}党支部",
                        kind="branch",
                        domain="rural",
                    )
                    rows.append(branch)
                    branch_rows.append(branch)
    User = get_user_model()
    with transaction.atomic():
        Organization.objects.bulk_create(rows, batch_size=2000)
        branch_ids = dict(
            Organization.objects.filter(code__startswith="S-", depth=5).values_list("code", "pk")
        )
        branch_codes = [b.code for b in branch_rows]
        done = 0
        batch = 20000
        # Phones 150xxxxxxxx upwards: disjoint from the demo city's 139 numbers.
        while done < members:
            size = min(batch, members - done)
            users = [
                User(username=f"150{done + i:08d}", password="!seeded", first_name="")
                for i in range(size)
            ]
            User.objects.bulk_create(users, batch_size=5000)
            user_ids = dict(
                User.objects.filter(
                    username__gte=f"150{done:08d}", username__lt=f"150{done + size:08d}"
                ).values_list("username", "pk")
            )
            rows = []
            for i in range(size):
                n = done + i
                phone = f"150{n:08d}"
                code = branch_codes[n % len(branch_codes)]
                rows.append(
                    Member(
                        user_id=user_ids[phone],
                        name=person_name(rng),
                        phone=phone,
                        organization_id=branch_ids[code],
                        status="probationary" if n % 23 == 0 else "full",
                        position="secretary" if n < len(branch_codes) else "member",
                        gender="male" if n % 3 else "female",
                        joined_on=joined_date(rng),
                    )
                )
            Member.objects.bulk_create(rows, batch_size=5000)
            done += size
            if stdout is not None:
                stdout.write(f"  {done} / {members} members")
    return {
        "created": True,
        "organizations": Organization.objects.in_subtree(
            Organization.objects.get(code=SCALE_ROOT_CODE)
        ).count(),
        "members": members,
    }
