"""Getting certificates: a member's own, a secretary's ZIP, and the public verification page."""

import tempfile

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.db.models import Count, Q
from django.http import Http404
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST
from django_ratelimit.decorators import ratelimit

from core.audit import audit_event
from core.downloads import file_response
from members import access
from members.models import Member, Organization, Role, mask_name, path_prefix_q
from rounds.models import Round

from . import services
from .models import Certificate, CertificateTemplate

# Who may download other members' certificates, within their subtree.
CERTIFICATE_ROLES = (Role.TRAINER, Role.SECRETARY)


def _own_member(request):
    member = Member.objects.filter(user=request.user).select_related("organization").first()
    if member is None:
        raise Http404
    return member


@login_required
def my_certificates(request):
    member = _own_member(request)
    certificates = (
        Certificate.objects.filter(member=member)
        .select_related("round", "superseded_by")
        .order_by("-issued_at", "-pk")
    )
    return render(
        request,
        "certificates/mine.html",
        {
            "member": member,
            "certificates": certificates,
            "years": services.statement_years(),
        },
    )


@login_required
@require_POST
def statement_request(request):
    """A member asks for their study-hours statement (学时证明) of a year."""
    member = _own_member(request)
    try:
        year = int(request.POST.get("year", ""))
    except ValueError:
        year = None
    if year not in services.statement_years():
        messages.error(request, _("Choose one of the years offered."))
        return redirect("certificates:mine")
    previous = Certificate.objects.valid().filter(kind="hours", member=member, year=year).first()
    statement = services.statement_issue(
        member=member, year=year, user=request.user, request=request
    )
    if previous is not None and previous.pk == statement.pk:
        messages.info(
            request,
            _("Your study-hours statement for %(year)s is unchanged: %(number)s.")
            % {"year": year, "number": statement.number},
        )
    else:
        messages.success(
            request,
            _("Your study-hours statement for %(year)s is ready: %(number)s.")
            % {"year": year, "number": statement.number},
        )
    return redirect("certificates:mine")


@login_required
def certificate_pdf(request, pk):
    """The PDF of one certificate: the member's own valid ones, or any in a staff's subtree."""
    certificate = get_object_or_404(
        Certificate.objects.select_related("member__organization", "snapshot", "round"), pk=pk
    )
    member = certificate.member
    staff = access.can_see_organization(request.user, member.organization, CERTIFICATE_ROLES)
    own = member.user_id == request.user.pk
    if not staff and not (own and certificate.is_valid):
        raise Http404
    stored = services.certificate_pdf(certificate=certificate)
    if not own:
        audit_event(
            event="certificate_downloaded",
            obj=certificate,
            request=request,
            number=certificate.number,
        )
    response = file_response(
        stored.open("rb"),
        filename=services.pdf_filename(certificate),
        content_type="application/pdf",
    )
    response["Cache-Control"] = "private, no-store"
    return response


def _staff_organization(request):
    """The organisation named by ?org= (checked against scope), or the user's only root."""
    if request.GET.get("org"):
        return access.get_organization_or_404(request.user, request.GET["org"], CERTIFICATE_ROLES)
    roots = access.role_roots(request.user, CERTIFICATE_ROLES)
    if roots is not None and len(roots) == 1:
        return roots[0]
    return None


@access.role_required(*CERTIFICATE_ROLES)
def org_certificates(request):
    """The rounds of the user's subtree with how many certificates each has issued there."""
    organization = _staff_organization(request)
    roots = access.role_roots(request.user, CERTIFICATE_ROLES)
    if organization is not None:
        roots = [organization]
    rounds = Round.objects.visible_to_roots(roots).published().order_by("-opens_on", "title")
    members_filter = Q(certificates__state=Certificate.State.VALID)
    if organization is not None:
        members_filter &= path_prefix_q(
            organization.path, "certificates__member__organization__path"
        )
    elif roots is not None:
        condition = Q()
        for root in roots:
            condition |= path_prefix_q(root.path, "certificates__member__organization__path")
        members_filter &= condition
    rounds = Round.objects.filter(pk__in=rounds.values("pk")).annotate(
        issued=Count("certificates", filter=members_filter)
    )
    if roots is None:
        choices = Organization.get_root_nodes()
    else:
        choices = sorted(access.role_roots(request.user, CERTIFICATE_ROLES), key=lambda o: o.path)
    return render(
        request,
        "certificates/org.html",
        {
            "organization": organization,
            "rounds": rounds.order_by("-opens_on", "title"),
            "choices": choices,
        },
    )


@access.role_required(*CERTIFICATE_ROLES)
def round_zip(request, round_pk):
    """A ZIP of a round's certificates in the user's subtree: one PDF per member and one merged
    PDF for printing. Built in a temporary file and streamed from it, never held in memory."""
    organization = _staff_organization(request)
    roots = [organization] if organization is not None else None
    if roots is None and access.role_roots(request.user, CERTIFICATE_ROLES) is not None:
        # Several roots and no ?org=: the user picks one on the list page.
        return redirect("certificates:org")
    training_round = Round.objects.visible_to_roots(roots).filter(pk=round_pk).first()
    if training_round is None or training_round.state == Round.State.DRAFT:
        raise Http404
    certificates = services.round_certificates(
        training_round=training_round, organization=organization
    )
    if not certificates.exists():
        messages.info(request, _("No certificates have been issued here for this round yet."))
        url = redirect("certificates:org").url
        return redirect(f"{url}?org={organization.pk}" if organization else url)
    target = tempfile.TemporaryFile(dir=getattr(settings, "FILE_UPLOAD_TEMP_DIR", None))
    try:
        services.certificates_zip_write(
            training_round=training_round,
            organization=organization,
            user=request.user,
            request=request,
            target=target,
        )
        target.seek(0)
    except BaseException:
        target.close()
        raise
    response = file_response(
        target,
        filename=services.zip_filename(training_round=training_round, organization=organization),
        content_type="application/zip",
    )
    response["Cache-Control"] = "private, no-store"
    return response


def _verify_rate(group, request):
    return getattr(settings, "LUNXUN_VERIFY_RATE", "30/m")


@ratelimit(key="ip", rate=_verify_rate, block=False)
def verify(request, code):
    """Public: is the certificate with this code genuine? No login; the name is masked. The
    issuer shown is the one printed on it (its template as issued), whatever the template says
    today."""
    if getattr(request, "limited", False):
        return render(request, "certificates/verify_limited.html", status=429)
    certificate = (
        Certificate.objects.select_related("snapshot", "round", "superseded_by")
        .filter(code=code)
        .first()
    )
    if certificate is None:
        return render(request, "certificates/verify_not_found.html", status=404)
    response = render(
        request,
        "certificates/verify.html",
        {
            "certificate": certificate,
            "masked_name": mask_name(certificate.name),
            "issuer": certificate.snapshot.issuer,
            "is_statement": certificate.kind == CertificateTemplate.Kind.HOURS,
        },
    )
    response["X-Robots-Tag"] = "noindex"
    return response
