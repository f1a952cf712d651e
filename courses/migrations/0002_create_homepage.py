from django.db import migrations


def create_homepage(apps, schema_editor):
    """Replace Wagtail's placeholder page with our home page as the site root."""
    ContentType = apps.get_model("contenttypes.ContentType")
    Page = apps.get_model("wagtailcore.Page")
    Site = apps.get_model("wagtailcore.Site")
    Locale = apps.get_model("wagtailcore.Locale")
    HomePage = apps.get_model("courses.HomePage")

    Page.objects.filter(id=2, slug="home", content_type__model="page").delete()
    if HomePage.objects.exists():
        return
    content_type, _created = ContentType.objects.get_or_create(
        model="homepage", app_label="courses"
    )
    locale = Locale.objects.get_or_create(language_code="zh-hans")[0]
    homepage = HomePage.objects.create(
        title="轮训 · 党员教育培训",
        draft_title="轮训 · 党员教育培训",
        slug="home",
        content_type=content_type,
        path="00010001",
        depth=2,
        numchild=0,
        url_path="/home/",
        locale=locale,
        intro="<p>全市党员专题轮训与远程教育学习平台。</p>",
    )
    Site.objects.filter(is_default_site=True).delete()
    Site.objects.create(hostname="localhost", root_page=homepage, is_default_site=True)


def remove_homepage(apps, schema_editor):
    apps.get_model("courses.HomePage").objects.all().delete()


class Migration(migrations.Migration):
    dependencies = [
        ("courses", "0001_initial"),
        ("wagtailcore", "0094_alter_page_locale"),
    ]

    operations = [migrations.RunPython(create_homepage, remove_homepage)]
