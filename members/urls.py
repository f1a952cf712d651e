from django.contrib.auth import views as auth_views
from django.urls import path

from . import views

app_name = "members"

urlpatterns = [
    path("login/", views.LoginView.as_view(), name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("activate/", views.activate, name="activate"),
    path("login/sms/", views.sms_code_request, {"purpose": "login"}, name="sms_login"),
    path("login/sms/code/", views.sms_code_enter, {"purpose": "login"}, name="sms_login_code"),
    path("password/forgot/", views.sms_code_request, {"purpose": "reset"}, name="sms_reset"),
    path(
        "password/forgot/code/", views.sms_code_enter, {"purpose": "reset"}, name="sms_reset_code"
    ),
    path("activate/sms/", views.sms_code_request, {"purpose": "activate"}, name="sms_activate"),
    path(
        "activate/sms/code/",
        views.sms_code_enter,
        {"purpose": "activate"},
        name="sms_activate_code",
    ),
    path("password/", views.PasswordChangeView.as_view(), name="password_change"),
    path("roster/", views.roster, name="roster"),
    path("roster/export/", views.roster_export, name="roster_export"),
    path("roster/deactivate/", views.members_deactivate, name="deactivate"),
    path("roster/activation-slips/", views.activation_slips, name="activation_slips"),
    path("members/<int:pk>/", views.member_detail, name="member_detail"),
    path("members/<int:pk>/categories/", views.member_categories, name="member_categories"),
    path(
        "members/<int:pk>/reset-password/",
        views.member_password_reset,
        name="member_password_reset",
    ),
    path("orgs/<int:pk>/", views.organization_detail, name="organization_detail"),
    path("imports/<str:kind>/new/", views.import_upload, name="import_upload"),
    path("imports/<str:kind>/template/", views.import_template, name="import_template"),
    path("imports/<int:pk>/", views.import_detail, name="import_detail"),
    path("imports/<int:pk>/apply/", views.import_apply, name="import_apply"),
]
