from auditlog.registry import auditlog
from django.contrib.auth.models import Permission
from django.dispatch import receiver

from members.demo import demo_city_seeded
from members.services import trainer_group_ready

from . import demo
from .models import Choice, Question, Quiz

auditlog.register(Question)
auditlog.register(Choice)
auditlog.register(Quiz)


@receiver(trainer_group_ready)
def grant_quiz_permissions(sender, group, **kwargs):
    """Trainers keep question banks and quizzes (each narrowed to the courses they may change,
    quizzes.admin_views)."""
    group.permissions.add(
        *Permission.objects.filter(
            content_type__app_label="quizzes",
            codename__in=[
                f"{action}_{model}"
                for action in ("add", "change", "delete", "view")
                for model in ("question", "quiz")
            ],
        )
    )


@receiver(demo_city_seeded)
def seed_demo_quizzes(sender, **kwargs):
    return demo.seed_demo_quizzes()
