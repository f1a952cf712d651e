from django.urls import include, path

from . import views

app_name = "rounds"

urlpatterns = [
    path("rounds/", views.round_list, name="list"),
    path("rounds/<int:pk>/", views.round_detail, name="detail"),
    path("rounds/<int:pk>/leave/", views.leave_create, name="leave_create"),
    path("rounds/<int:pk>/leave/withdraw/", views.leave_withdraw, name="leave_withdraw"),
    path("rounds/<int:pk>/coverage/", views.coverage, name="coverage"),
    path("rounds/<int:pk>/coverage/export/", views.coverage_export_view, name="coverage_export"),
    path("rounds/<int:pk>/members/<int:member_pk>/", views.member_status, name="member_status"),
    path(
        "rounds/<int:pk>/members/<int:member_pk>/exempt/",
        views.exemption_create,
        name="exemption_create",
    ),
    path(
        "rounds/<int:pk>/members/<int:member_pk>/exempt/revoke/",
        views.exemption_revoke,
        name="exemption_revoke",
    ),
    path("rounds/<int:pk>/leave-requests/", views.leave_list, name="leave_list"),
    path(
        "rounds/<int:pk>/leave-requests/<int:leave_pk>/decide/",
        views.leave_decide,
        name="leave_decide",
    ),
    path("sessions/<int:session_pk>/at/<int:timestamp>/", views.sitting_open, name="sitting_open"),
    path("sittings/<int:pk>/", views.sitting_detail, name="sitting"),
    path("sittings/<int:pk>/screen/", views.sitting_screen, name="sitting_screen"),
    path("sittings/<int:pk>/code/", views.sitting_code, name="sitting_code"),
    path("sittings/<int:pk>/roll-call/", views.roll_call, name="roll_call"),
    path("sittings/<int:pk>/close/", views.sitting_close, name="sitting_close"),
    path("check-in/resume/", views.check_in_resume, name="check_in_resume"),
    path("check-in/<str:token>/", views.check_in, name="check_in"),
    path("", include("rounds.urls_calendar")),
    path("", include("rounds.urls_reminders")),
    path("", include("rounds.urls_ledger")),
]
