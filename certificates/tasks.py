"""Background work for certificates: issuing a round's, and rendering their PDFs.

Neither runs inside a request: a closed round (``rounds.services.round_closed``) and a
trainer's "issue now" both enqueue ``certificates_issue_task``; issuing enqueues
``certificates_render_task`` for each chunk it created, after the chunk commits.

Tasks import their services inside the function: the services import this module at the top to
enqueue, so a top-level import here would be a cycle (certificates.services imports
certificates.tasks).
"""

from django.contrib.auth import get_user_model
from django_tasks import task

from rounds.models import Round

from .models import Certificate


@task()
def certificates_issue_task(round_id: int, user_id: int | None = None):
    """Issue the round's certificates to every member who completed it and has none yet."""
    from .services import certificates_issue

    training_round = Round.objects.filter(pk=round_id).first()
    if training_round is None or training_round.state == Round.State.DRAFT:
        return None
    user = get_user_model().objects.filter(pk=user_id).first() if user_id else None
    result = certificates_issue(training_round=training_round, user=user)
    return {"round": round_id, "issued": result.count, "first": result.first, "last": result.last}


@task()
def certificates_render_task(certificate_ids: list[int]):
    """Render and store the PDFs of these certificates (those that have none yet)."""
    from .services import certificates_render

    rendered = certificates_render(certificates=Certificate.objects.filter(pk__in=certificate_ids))
    return {"rendered": rendered}
