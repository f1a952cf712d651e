from django.urls import path

from .views import calendar, ledger, paper, plans, reminders, rounds, terminal

app_name = "rounds"

urlpatterns = [
    path("rounds/", rounds.round_list, name="list"),
    path("rounds/<int:pk>/", rounds.round_detail, name="detail"),
    path("rounds/<int:pk>/leave/", rounds.leave_create, name="leave_create"),
    path("rounds/<int:pk>/leave/withdraw/", rounds.leave_withdraw, name="leave_withdraw"),
    path("rounds/<int:pk>/coverage/", rounds.coverage, name="coverage"),
    path("rounds/<int:pk>/coverage/export/", rounds.coverage_export_view, name="coverage_export"),
    path("rounds/<int:pk>/members/<int:member_pk>/", rounds.member_status, name="member_status"),
    path(
        "rounds/<int:pk>/members/<int:member_pk>/exempt/",
        rounds.exemption_create,
        name="exemption_create",
    ),
    path(
        "rounds/<int:pk>/members/<int:member_pk>/exempt/revoke/",
        rounds.exemption_revoke,
        name="exemption_revoke",
    ),
    path("rounds/<int:pk>/leave-requests/", rounds.leave_list, name="leave_list"),
    path(
        "rounds/<int:pk>/leave-requests/<int:leave_pk>/decide/",
        rounds.leave_decide,
        name="leave_decide",
    ),
    path("sessions/<int:session_pk>/at/<int:timestamp>/", rounds.sitting_open, name="sitting_open"),
    path("sittings/<int:pk>/", rounds.sitting_detail, name="sitting"),
    path("sittings/<int:pk>/screen/", rounds.sitting_screen, name="sitting_screen"),
    path("sittings/<int:pk>/code/", rounds.sitting_code, name="sitting_code"),
    path("sittings/<int:pk>/roll-call/", rounds.roll_call, name="roll_call"),
    path("sittings/<int:pk>/close/", rounds.sitting_close, name="sitting_close"),
    # The paper sign-in sheet: printed per sitting, its ticks entered afterwards
    path("sittings/<int:pk>/sign-in-sheet/", paper.sign_in_sheet, name="sign_in_sheet"),
    path("sittings/<int:pk>/paper/", paper.paper_entry, name="paper_entry"),
    path("paper-sheets/", paper.paper_find, name="paper_find"),
    path("check-in/resume/", rounds.check_in_resume, name="check_in_resume"),
    path("check-in/mine/", terminal.personal_codes, name="personal_codes"),
    path("check-in/<str:token>/", rounds.check_in, name="check_in"),
    # Site terminals (站点终端): the service worker's scope is /site-terminals/
    path("site-terminals/", terminal.terminal_list, name="terminals"),
    path("site-terminals/sw.js", terminal.terminal_service_worker, name="terminal_sw"),
    path("site-terminals/<int:pk>/", terminal.terminal_app, name="terminal"),
    path("site-terminals/<int:pk>/revoke/", terminal.terminal_revoke, name="terminal_revoke"),
    path("site-terminals/<int:pk>/claim/", terminal.terminal_claim, name="terminal_claim"),
    path("site-terminals/<int:pk>/package/", terminal.terminal_package, name="terminal_package"),
    path("site-terminals/<int:pk>/sync/", terminal.terminal_sync, name="terminal_sync"),
    # The calendar and the iCalendar feed
    path("calendar/", calendar.month, name="calendar"),
    path("calendar/agenda/", calendar.agenda, name="calendar_agenda"),
    path("calendar/feed/", calendar.feed, name="calendar_feed"),
    path("calendar/feed/reset/", calendar.feed_reset, name="calendar_feed_reset"),
    path("ical/<str:token>.ics", calendar.ical_feed, name="ical_feed"),
    # Reminders and notices
    path("rounds/<int:round_pk>/remind/", reminders.remind, name="remind"),
    path("notices/", reminders.notice_list, name="notices"),
    path("notices/read/", reminders.notices_read, name="notices_read"),
    # The study-hours ledger
    path("hours/", ledger.my_hours, name="ledger_mine"),
    path("hours/org/", ledger.org_hours, name="ledger_org"),
    path("hours/org/export/", ledger.org_hours_export, name="ledger_org_export"),
    path("hours/org/<int:member_pk>/", ledger.org_member_hours, name="ledger_member"),
    path("hours/org/<int:member_pk>/record/", ledger.record_new, name="record_new"),
    path("hours/records/", ledger.record_list, name="records"),
    # The five-year plan
    path("plans/", plans.plan_list, name="plans"),
    path("plans/<int:pk>/", plans.plan_detail, name="plan"),
    path("plans/<int:pk>/export/", plans.plan_export, name="plan_export"),
    path("hours/records/<int:pk>/decide/", ledger.record_decide, name="record_decide"),
]
