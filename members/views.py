import math

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import login
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.core.paginator import Paginator
from django.db.models import Count, Q
from django.http import Http404
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse, reverse_lazy
from django.utils import timezone
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy, ngettext
from django.views.decorators.http import require_POST

from core import ratelimits
from core.audit import REFUSED, audit_event
from core.downloads import xlsx_response
from core.sms import mask_phone
from core.tabular import TableError

from . import access, importing, services, sms_codes
from .forms import (
    ActivationForm,
    ImportUploadForm,
    LoginForm,
    MemberCategoriesForm,
    ResetConfirmForm,
    RosterFilterForm,
    SmsCodeForm,
    SmsCodePasswordForm,
    SmsCodeRequestForm,
)
from .models import (
    ActivationCode,
    Member,
    Organization,
    SmsCode,
    SpreadsheetImport,
    path_prefix_q,
)

ROSTER_PAGE_SIZE = 50


class LoginView(auth_views.LoginView):
    template_name = "members/login.html"
    form_class = LoginForm
    redirect_authenticated_user = True

    def post(self, request, *args, **kwargs):
        # django-axes locks an account after repeated failures; this limits one address trying
        # many accounts. Over the limit no password is checked and no account is charged.
        if ratelimits.login_limited(request):
            messages.error(
                request,
                _(
                    "Too many log-in attempts from this network in a short time. "
                    "Please wait a minute and try again."
                ),
            )
            form = self.form_class(request, initial={"username": request.POST.get("username", "")})
            return self.render_to_response(self.get_context_data(form=form), status=429)
        return super().post(request, *args, **kwargs)


def lockout_response(request, response=None, credentials=None):
    """django-axes: the same words whether or not the account exists."""
    minutes = int(settings.AXES_COOLOFF_TIME.total_seconds() // 60)
    return render(
        request,
        "members/locked.html",
        {"minutes": minutes, "limit": settings.AXES_FAILURE_LIMIT},
        status=429,
    )


def _selected_org(request, members_roles=access.STAFF_ROLES):
    """The organisation named by ?org=, checked against the user's scope; None for all."""
    org_id = request.GET.get("org")
    if not org_id:
        return None
    return access.get_organization_or_404(request.user, org_id, members_roles)


def _roster_queryset(request, form):
    members = access.visible_members(request.user)
    organization = _selected_org(request)
    if organization is not None:
        members = members.filter(path_prefix_q(organization.path, "organization__path"))
    if form.is_valid():
        members = form.filter(members)
    else:
        members = members.active()
    return members, organization


@access.role_required()
def roster(request):
    form = RosterFilterForm(request.GET or None)
    members, organization = _roster_queryset(request, form)
    page = Paginator(
        members.select_related("organization").order_by("organization__path", "name", "pk"),
        ROSTER_PAGE_SIZE,
    ).get_page(request.GET.get("page"))
    roots = access.role_roots(request.user)
    top = Organization.get_root_nodes() if roots is None else sorted(roots, key=lambda o: o.path)
    query = request.GET.copy()
    query.pop("page", None)
    return render(
        request,
        "members/roster.html",
        {
            "form": form,
            "page": page,
            "organization": organization,
            "top_organizations": top,
            "query": query.urlencode(),
            "can_manage": access.has_role(request.user, access.ROLES_MANAGING_ROSTER),
            "can_import_organizations": access.has_role(request.user, (access.Role.TRAINER,)),
        },
    )


@access.role_required()
def roster_export(request):
    form = RosterFilterForm(request.GET or None)
    members, organization = _roster_queryset(request, form)
    content = importing.roster_export(
        members=members.order_by("organization__path", "name", "pk"),
        user=request.user,
        request=request,
        scope_label=organization.code if organization else "",
    )
    stamp = timezone.localtime().strftime("%Y%m%d-%H%M")
    return xlsx_response(content, f"roster-{stamp}.xlsx")


@access.role_required()
def member_detail(request, pk):
    member = access.get_member_or_404(request.user, pk)
    return render(
        request,
        "members/member_detail.html",
        {
            "member": member,
            "show_phone": access.can_see_phone(request.user, member),
            "roles": member.user.role_assignments.select_related("organization"),
            "postings": member.postings.select_related("organization"),
            "can_manage": access.can_see_member(request.user, member, access.ROLES_MANAGING_ROSTER),
            "can_edit_categories": access.can_edit_categories(request.user, member),
            "can_reset_password": access.can_reset_password(request.user, member),
            "reset_form": ResetConfirmForm(),
        },
    )


@access.role_required(*access.ROLES_MANAGING_ROSTER)
def member_categories(request, pk):
    """A secretary (or trainer) keeps a member's status, position and categories up to date.
    The change is audit-logged field by field, with who made it."""
    member = access.get_member_or_404(request.user, pk, access.ROLES_MANAGING_ROSTER)
    if not access.can_edit_categories(request.user, member):
        raise Http404
    form = MemberCategoriesForm(request.POST or None, instance=member)
    if request.method == "POST" and form.is_valid():
        if form.has_changed():
            form.save()
            messages.success(request, _("The member's categories were saved."))
        else:
            messages.info(request, _("Nothing was changed."))
        return redirect("members:member_detail", pk=member.pk)
    return render(request, "members/member_categories.html", {"member": member, "form": form})


@access.role_required()
def organization_detail(request, pk):
    organization = access.get_organization_or_404(request.user, pk)
    counted = Q(members__is_active=True, members__status__in=Member.PARTY_STATUSES)
    children = organization.get_children().annotate(direct_members=Count("members", filter=counted))
    in_subtree = Member.objects.active().in_subtree(organization)
    subtree_members = in_subtree.party_members().count()
    # 流动党员 who belong elsewhere and take part here: the secretary sees them too.
    taking_part_here = (
        Member.objects.active()
        .filter(path_prefix_q(organization.path, "activity_organization__path"))
        .exclude(path_prefix_q(organization.path, "organization__path"))
        .select_related("organization", "activity_organization")
        .order_by("activity_organization__path", "name")
    )
    return render(
        request,
        "members/organization_detail.html",
        {
            "organization": organization,
            "ancestors": [
                o
                for o in organization.ancestors_and_self()
                if access.can_see_organization(request.user, o)
            ],
            "children": children,
            "subtree_members": subtree_members,
            "subtree_learners": in_subtree.learners().count(),
            "direct_members": organization.members.active().party_members().count(),
            "taking_part_here": taking_part_here[:200],
            "taking_part_here_count": taking_part_here.count(),
        },
    )


# --- Imports -----------------------------------------------------------------------------------

IMPORT_KINDS = {
    "roster": (SpreadsheetImport.Kind.ROSTER, access.ROLES_MANAGING_ROSTER),
    "organizations": (SpreadsheetImport.Kind.ORGANIZATIONS, (access.Role.TRAINER,)),
}
CHECKERS = {
    SpreadsheetImport.Kind.ROSTER: (importing.roster_check, importing.roster_apply),
    SpreadsheetImport.Kind.ORGANIZATIONS: (importing.orgs_check, importing.orgs_apply),
}


def _import_kind(request, kind):
    if kind not in IMPORT_KINDS:
        raise Http404
    model_kind, roles = IMPORT_KINDS[kind]
    if not access.has_role(request.user, roles):
        raise Http404
    return model_kind


@login_required
def import_upload(request, kind):
    model_kind = _import_kind(request, kind)
    form = ImportUploadForm(request.POST or None, request.FILES or None)
    if request.method == "POST" and form.is_valid():
        upload = form.cleaned_data["file"]
        if upload.size > settings.LUNXUN_IMPORT_MAX_BYTES:
            form.add_error(
                "file",
                _("The file is larger than %(mb)d MB.")
                % {"mb": settings.LUNXUN_IMPORT_MAX_BYTES // (1024 * 1024)},
            )
        else:
            check, _apply = CHECKERS[model_kind]
            try:
                record = check(data=upload.read(), file_name=upload.name, user=request.user)
            except TableError as error:
                form.add_error("file", str(error))
            else:
                return redirect("members:import_detail", pk=record.pk)
    return render(
        request,
        "members/import_upload.html",
        {"form": form, "kind": kind, "kind_label": SpreadsheetImport.Kind(model_kind).label},
    )


def _own_import(request, pk):
    """An import is visible to the person who uploaded it (and to superusers)."""
    qs = SpreadsheetImport.objects.all()
    if not request.user.is_superuser:
        qs = qs.filter(uploaded_by=request.user)
    return get_object_or_404(qs, pk=pk)


@login_required
def import_detail(request, pk):
    record = _own_import(request, pk)
    kind = "roster" if record.kind == SpreadsheetImport.Kind.ROSTER else "organizations"
    _import_kind(request, kind)
    report = record.report
    errors = report.get("errors", [])
    return render(
        request,
        "members/import_detail.html",
        {
            "record": record,
            "kind": kind,
            "report": report,
            "counts": report.get("counts", {}),
            "errors": errors[:1000],
            "more_errors": max(0, len(errors) - 1000),
            "changes": report.get("changes", [])[:200],
            "missing": report.get("missing", []),
            "upload_url": reverse("members:import_upload", args=[kind]),
            "apply_url": reverse("members:import_apply", args=[record.pk]),
        },
    )


@login_required
@require_POST
def import_apply(request, pk):
    record = _own_import(request, pk)
    kind = "roster" if record.kind == SpreadsheetImport.Kind.ROSTER else "organizations"
    _import_kind(request, kind)
    _check, apply = CHECKERS[record.kind]
    event = importing.IMPORTERS[record.kind].event
    try:
        report = apply(spreadsheet_import=record, user=request.user, request=request)
    except importing.ImportAlreadyApplied:
        message = _("This file was already imported; nothing was changed again.")
        audit_event(event=event, obj=record, request=request, result=REFUSED, error=message)
        messages.info(request, message)
    except importing.ImportRejected as rejected:
        record.report = rejected.report
        record.state = SpreadsheetImport.State.REJECTED
        record.save(update_fields=["report", "state"])
        message = _(
            "The data changed since the check and some rows are now invalid; nothing was "
            "imported. Correct the file and upload it again."
        )
        audit_event(
            event=event,
            obj=record,
            request=request,
            result=REFUSED,
            error=message,
            file=record.file_name,
            errors=rejected.report.get("counts", {}).get("errors", 0),
        )
        messages.error(request, message)
    else:
        counts = report["counts"]
        messages.success(
            request,
            _("Imported: %(new)d new, %(changed)d changed, %(unchanged)d unchanged.") % counts,
        )
    return redirect("members:import_detail", pk=record.pk)


@access.role_required(*access.ROLES_MANAGING_ROSTER)
@require_POST
def members_deactivate(request):
    ids = [int(i) for i in request.POST.getlist("member") if i.isdigit()]
    count = services.members_deactivate(member_ids=ids, user=request.user, request=request)
    messages.success(request, _("%(n)d members marked as no longer on record.") % {"n": count})
    back = request.POST.get("next")
    if back and back.startswith("/") and not back.startswith("//"):
        return redirect(back)
    return redirect("members:roster")


@login_required
def import_template(request, kind):
    _import_kind(request, kind)
    if kind == "roster":
        return xlsx_response(importing.roster_template(), "roster-template.xlsx")
    return xlsx_response(importing.org_template(), "organizations-template.xlsx")


# --- Activation --------------------------------------------------------------------------------


def _slips(request, issued, *, reset=False):
    """The printable slips, shown once: the codes are stored hashed only."""
    return render(
        request,
        "members/activation_slips.html",
        {
            "issued": issued,
            "reset": reset,
            "activate_url": request.build_absolute_uri(reverse("members:activate")),
            "expires": timezone.localtime(ActivationCode.expiry_from_now()),
        },
    )


@access.role_required(*access.ROLES_MANAGING_ROSTER)
@require_POST
def activation_slips(request):
    """Issue one-time codes for the chosen members and show the printable slips once. Only
    accounts never in use get one (members.services.activation_codes_issue decides)."""
    visible = access.visible_members(request.user, access.ROLES_MANAGING_ROSTER).active()
    ids = [int(i) for i in request.POST.getlist("member") if i.isdigit()]
    if request.POST.get("org"):
        organization = access.get_organization_or_404(
            request.user, request.POST["org"], access.ROLES_MANAGING_ROSTER
        )
        members = visible.in_subtree(organization).never_activated()
    else:
        members = visible.filter(pk__in=ids)
    members = members.select_related("organization").order_by("organization__path", "name")
    members = list(members)
    issued = services.activation_codes_issue(members=members, user=request.user, request=request)
    in_use = len(members) - len(issued)
    if in_use:
        messages.warning(
            request,
            ngettext(
                "%(n)d member already uses their account and got no slip: a forgotten "
                "password is reset from the member's page.",
                "%(n)d members already use their accounts and got no slip: a forgotten "
                "password is reset from the member's page.",
                in_use,
            )
            % {"n": in_use},
        )
    if not issued:
        if not members:
            messages.info(request, _("No members were selected, or all of them are activated."))
        return redirect("members:roster")
    return _slips(request, issued)


@access.role_required(*access.ROLES_MANAGING_ROSTER)
@require_POST
def member_password_reset(request, pk):
    """Reset a member's password (members.services.member_password_reset) and show the reset
    slip once. The member must be one this user may reset (access.can_reset_password); asked
    about anyone else, the answer is what an unknown id gets, and the attempt is audit-logged."""
    member = Member.objects.select_related("organization", "user").filter(pk=pk).first()
    if member is None:
        raise Http404
    visible = access.can_see_member(request.user, member, access.ROLES_MANAGING_ROSTER)
    back = redirect("members:member_detail", pk=member.pk)
    if visible and not ResetConfirmForm(request.POST).is_valid():
        messages.error(request, _("Tick the box to confirm the reset; nothing was changed."))
        return back
    try:
        code = services.member_password_reset(member=member, user=request.user, request=request)
    except services.PasswordResetRefused as refused:
        if not visible:
            raise Http404 from None
        messages.error(request, str(refused))
        return back
    return _slips(request, [services.Slip(member, code)], reset=True)


def activate(request):
    """Set a password with the code from an activation or a password-reset slip."""
    form = ActivationForm(request.POST or None)
    if request.method == "POST" and ratelimits.activate_limited(request):
        # Over the limit no code is checked and no code is charged.
        messages.error(
            request,
            _(
                "Too many tries from this network in a short time. Please wait a minute and "
                "try again."
            ),
        )
        form = ActivationForm(initial={"phone": request.POST.get("phone", "")})
        return render(request, "members/activate.html", {"form": form}, status=429)
    if request.method == "POST" and form.is_valid():
        try:
            member = services.member_activate(
                phone=form.cleaned_data["phone"],
                code=form.cleaned_data["code"],
                password=form.cleaned_data["password1"],
                request=request,
            )
        except services.ActivationError as error:
            form.add_error(None, str(error))
        except ValidationError as error:
            form.add_error("password1", error)
        else:
            login(request, member.user, backend="members.backends.PhoneOrUsernameBackend")
            messages.success(
                request, _("Your password is set. Welcome, %(name)s.") % {"name": member.name}
            )
            return redirect("/")
    return render(request, "members/activate.html", {"form": form})


# --- Codes by SMS: log in, activate, reset (members.sms_codes) -------------------------------

SMS_FLOW = "sms_code_flow"  # the session key: {"purpose", "phone", "next", "tries"}
SMS_FLOWS = {
    SmsCode.Purpose.LOGIN: {
        "title": gettext_lazy("Log in with an SMS code"),
        "start": "members:sms_login",
        "code": "members:sms_login_code",
        "submit": gettext_lazy("Log in"),
    },
    SmsCode.Purpose.RESET: {
        "title": gettext_lazy("Forgot my password: reset it by SMS"),
        "start": "members:sms_reset",
        "code": "members:sms_reset_code",
        "submit": gettext_lazy("Set my new password"),
    },
    SmsCode.Purpose.ACTIVATE: {
        "title": gettext_lazy("Activate my account by SMS"),
        "start": "members:sms_activate",
        "code": "members:sms_activate_code",
        "submit": gettext_lazy("Set my password"),
    },
}


def _safe_next(request, url) -> str:
    """``url`` when it is a path on this site, "" otherwise (never an open redirect)."""
    if url and url_has_allowed_host_and_scheme(
        url, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return url
    return ""


def sms_code_request(request, purpose):
    """Step one: the registered number; a code is sent when the number may have one. The
    answer is the same whether or not it may (the next page says "if this number is
    registered…"); over a rate limit nothing is sent and the page says so (429)."""
    flow = SMS_FLOWS[purpose]
    next_url = _safe_next(request, request.POST.get("next") or request.GET.get("next"))
    if purpose == SmsCode.Purpose.LOGIN and request.user.is_authenticated:
        return redirect(next_url or "/")
    earlier = request.session.get(SMS_FLOW) or {}
    form = SmsCodeRequestForm(
        request.POST or None,
        initial={"phone": earlier.get("phone", "")} if earlier.get("purpose") == purpose else {},
    )
    context = {"form": form, "flow": flow, "purpose": purpose, "next": next_url}
    if request.method == "POST" and form.is_valid():
        phone = form.cleaned_data["phone"]
        if ratelimits.sms_send_limited(request, phone):
            messages.error(
                request,
                _(
                    "Too many codes were asked for this number or from this network in a short "
                    "time. Nothing was sent. Please wait a few minutes and try again."
                ),
            )
            return render(request, "members/sms_code_request.html", context, status=429)
        sms_codes.sms_code_send(phone=phone, purpose=purpose, request=request)
        request.session[SMS_FLOW] = {
            "purpose": purpose,
            "phone": phone,
            "next": next_url,
            "tries": 0,
        }
        return redirect(flow["code"])
    return render(request, "members/sms_code_request.html", context)


def sms_code_enter(request, purpose):
    """Step two: the code (and, to activate or reset, the new password twice). A right code
    logs the member in; a wrong one gets the same words whatever the reason, and after
    LUNXUN_SMS_CODE_MAX_FAILURES of them this page asks for a new code."""
    flow = SMS_FLOWS[purpose]
    state = request.session.get(SMS_FLOW) or {}
    if state.get("purpose") != purpose or not state.get("phone"):
        return redirect(flow["start"])
    form_class = SmsCodeForm if purpose == SmsCode.Purpose.LOGIN else SmsCodePasswordForm
    form = form_class(request.POST or None)
    limit = settings.LUNXUN_SMS_CODE_MAX_FAILURES
    context = {
        "form": form,
        "flow": flow,
        "purpose": purpose,
        "masked_phone": mask_phone(state["phone"]),
        "minutes": settings.LUNXUN_SMS_CODE_MINUTES,
        "limit": limit,
    }
    if state.get("tries", 0) >= limit:
        return render(request, "members/sms_code_enter.html", {**context, "burnt": True})
    if request.method == "POST":
        if ratelimits.sms_check_limited(request):
            # Over the limit no code is checked and no code is charged.
            messages.error(
                request,
                _(
                    "Too many tries from this network in a short time. Nothing was checked. "
                    "Please wait a minute and try again."
                ),
            )
            context["form"] = form_class()
            return render(request, "members/sms_code_enter.html", context, status=429)
        if form.is_valid():
            data = form.cleaned_data
            try:
                if purpose == SmsCode.Purpose.LOGIN:
                    member = sms_codes.sms_code_login(
                        phone=state["phone"], code=data["code"], request=request
                    )
                else:
                    member = sms_codes.sms_code_password_set(
                        phone=state["phone"],
                        purpose=purpose,
                        code=data["code"],
                        password=data["password1"],
                        request=request,
                    )
            except sms_codes.SmsCodeError as error:
                state["tries"] = state.get("tries", 0) + 1
                request.session[SMS_FLOW] = state
                if state["tries"] >= limit:
                    return render(
                        request, "members/sms_code_enter.html", {**context, "burnt": True}
                    )
                form.add_error("code", str(error))
            except ValidationError as error:
                form.add_error("password1", error)
            else:
                del request.session[SMS_FLOW]
                login(request, member.user, backend="members.backends.PhoneOrUsernameBackend")
                if purpose == SmsCode.Purpose.LOGIN:
                    return redirect(_safe_next(request, state.get("next")) or "/")
                messages.success(
                    request,
                    _("Your password is set. Welcome, %(name)s.") % {"name": member.name},
                )
                return redirect("/")
    return render(request, "members/sms_code_enter.html", context)


class PasswordChangeView(auth_views.PasswordChangeView):
    """A logged-in user changes their own password with the current one; they stay logged in
    here, their other sessions end, and the change is audit-logged."""

    template_name = "members/password_change.html"
    success_url = reverse_lazy("members:password_change")

    def post(self, request, *args, **kwargs):
        locked = ratelimits.password_check_locked(request)
        if locked:
            # Over the limit the current password is not even checked.
            audit_event(
                event="password_change",
                obj=request.user,
                request=request,
                result=REFUSED,
                error="too many wrong current passwords",
            )
            messages.error(
                request,
                _(
                    "Too many wrong current passwords. Please try again in %(minutes)d minutes, "
                    "or ask your branch secretary to reset your password."
                )
                % {"minutes": math.ceil(locked / 60)},
            )
            return self.render_to_response(
                self.get_context_data(form=self.form_class(user=request.user)), status=429
            )
        return super().post(request, *args, **kwargs)

    def form_invalid(self, form):
        if form.has_error("old_password"):
            ratelimits.password_check_failed(self.request)
            audit_event(
                event="password_change",
                obj=self.request.user,
                request=self.request,
                result=REFUSED,
                error="wrong current password",
            )
        return super().form_invalid(form)

    def form_valid(self, form):
        response = super().form_valid(form)  # saves, and keeps this session valid
        services.password_change_record(user=form.user, request=self.request)
        messages.success(self.request, _("Your password was changed."))
        return response
