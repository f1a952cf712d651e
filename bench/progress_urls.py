"""The project's URLs plus /bench/bare/: the baseline of bench_progress (same server, same
middleware stack, no work of ours, no database)."""

from django.http import JsonResponse
from django.urls import path
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from config.urls import urlpatterns as project_urlpatterns


@csrf_exempt
@require_POST
def bare(request):
    return JsonResponse({"ok": True})


# First: the project's patterns end with Wagtail's catch-all.
urlpatterns = [path("bench/bare/", bare), *project_urlpatterns]
