from django.db import migrations


def create_course_index(apps, schema_editor):
    """The course centre (课程中心) under the home page: where trainers publish courses."""
    ContentType = apps.get_model("contenttypes.ContentType")
    HomePage = apps.get_model("courses.HomePage")
    CourseIndexPage = apps.get_model("courses.CourseIndexPage")
    home = HomePage.objects.first()
    if home is None or CourseIndexPage.objects.exists():
        return
    content_type, _created = ContentType.objects.get_or_create(
        model="courseindexpage", app_label="courses"
    )
    # A treebeard child path, computed as add_child would (historical models lack its API).
    step = 4
    children = type(home).objects.filter(path__startswith=home.path, depth=home.depth + 1)
    last = children.order_by("-path").first()
    number = int(last.path[-step:], 36) + 1 if last else 1
    alphabet = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"
    digits = ""
    while number:
        number, rest = divmod(number, 36)
        digits = alphabet[rest] + digits
    path = home.path + digits.rjust(step, "0")
    CourseIndexPage.objects.create(
        title="课程中心",
        draft_title="课程中心",
        slug="courses",
        content_type=content_type,
        path=path,
        depth=home.depth + 1,
        numchild=0,
        url_path=f"{home.url_path}courses/",
        locale_id=home.locale_id,
        intro="<p>全市党员远程教育课程。</p>",
        live=True,
    )
    Page = apps.get_model("wagtailcore.Page")
    Page.objects.filter(pk=home.pk).update(numchild=home.numchild + 1)


class Migration(migrations.Migration):
    dependencies = [("courses", "0003_courses_and_video")]

    operations = [migrations.RunPython(create_course_index, migrations.RunPython.noop)]
