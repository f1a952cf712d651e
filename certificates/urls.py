from django.urls import path

from . import views

app_name = "certificates"

urlpatterns = [
    path("certificates/", views.my_certificates, name="mine"),
    path("certificates/statements/", views.statement_request, name="statement_request"),
    path("certificates/<int:pk>/pdf/", views.certificate_pdf, name="pdf"),
    path("certificates/org/", views.org_certificates, name="org"),
    path("certificates/rounds/<int:round_pk>/zip/", views.round_zip, name="round_zip"),
    path("certificates/verify/<str:code>/", views.verify, name="verify"),
]
