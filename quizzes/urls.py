from django.urls import path

from . import views

app_name = "quizzes"

urlpatterns = [
    path("quizzes/", views.quiz_list, name="list"),
    path("quizzes/<int:pk>/", views.quiz_detail, name="detail"),
    path("quizzes/<int:pk>/results/", views.quiz_results, name="results"),
    path("quizzes/<int:pk>/start/", views.quiz_start, name="start"),
    path("quizzes/<int:pk>/paper/", views.quiz_paper, name="paper"),
    path("quizzes/attempts/<int:pk>/", views.attempt_take, name="attempt"),
    path("quizzes/attempts/<int:pk>/submit/", views.attempt_submit, name="submit"),
    path("quizzes/attempts/<int:pk>/enter/", views.paper_enter, name="paper_enter"),
    path("quizzes/attempts/<int:pk>/result/", views.attempt_result, name="result"),
    path("quizzes/import/", views.import_upload, name="import_upload"),
    path("quizzes/import/template/", views.import_template, name="import_template"),
    path("quizzes/import/<int:pk>/", views.import_detail, name="import_detail"),
    path("quizzes/import/<int:pk>/apply/", views.import_apply, name="import_apply"),
]
