from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class CoursesConfig(AppConfig):
    name = "courses"
    verbose_name = _("Courses")

    def ready(self):
        from . import signals  # noqa: F401
        from .admin_forms import CoursePageForm
        from .models import CoursePage

        # Not a class attribute in models.py: admin_forms imports Wagtail's image, document and
        # media forms, whose modules import models that are not loaded while ours load.
        CoursePage.base_form_class = CoursePageForm
