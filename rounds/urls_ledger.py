from django.urls import path

from . import ledger_views

urlpatterns = [
    path("hours/", ledger_views.my_hours, name="ledger_mine"),
    path("hours/org/", ledger_views.org_hours, name="ledger_org"),
    path("hours/org/export/", ledger_views.org_hours_export, name="ledger_org_export"),
    path("hours/org/<int:member_pk>/", ledger_views.org_member_hours, name="ledger_member"),
]
