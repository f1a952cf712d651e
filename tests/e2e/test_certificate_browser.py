"""A member downloads their completion certificate in a real browser; the QR code printed on
it (decoded from the PDF's rendered page with zbarimg, as a phone camera would) opens the
public verification page, which shows it valid with the masked name."""

import shutil

import pytest

from certificates import services
from certificates.models import Certificate

from .. import factories
from ..certificates.rounds_setup import completed_round, pdf_text, qr_payloads

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def test_member_downloads_certificate_and_its_qr_code_verifies_it(
    city, browser, live_server, settings, tmp_path
):
    settings.LUNXUN_SITE_URL = live_server.url
    settings.MEDIA_ROOT = tmp_path / "media"
    member = factories.member(city.branch_a, name="张小三", phone="13800000031")
    training_round = completed_round([city.root], member)
    services.certificates_issue(training_round=training_round, render=False)
    certificate = Certificate.objects.get(member=member)

    phone = browser.new_context(
        viewport={"width": 360, "height": 740}, locale="zh-CN", base_url=live_server.url
    )
    scanner = browser.new_context(
        viewport={"width": 360, "height": 740}, locale="zh-CN", base_url=live_server.url
    )
    try:
        page = phone.new_page()
        page.set_default_timeout(20000)
        page.goto("/login/")
        page.get_by_label("手机号码或用户名").fill(member.phone)
        page.get_by_label("密码").fill(factories.PASSWORD)
        page.get_by_role("button", name="登录").click()
        page.wait_for_url("**/")
        page.goto("/certificates/")
        row = page.locator(f"tr[data-certificate='{certificate.pk}']")
        assert certificate.number in row.inner_text()
        with page.expect_download() as download_info:
            row.locator("a[href$='/pdf/']").click()
        download = download_info.value
        assert download.suggested_filename == f"{certificate.number}-张小三.pdf"
        pdf = tmp_path / "certificate.pdf"
        shutil.copyfile(download.path(), pdf)
        assert pdf.read_bytes().startswith(b"%PDF-")
        text = pdf_text(pdf)
        assert "张小三" in text and certificate.number in text

        # The QR code on the page, read as a camera would.
        scans = qr_payloads(pdf, tmp_path)
        expected = f"{live_server.url}/certificates/verify/{certificate.code}/"
        assert scans == [expected]

        # Whoever scans it is not logged in.
        verify = scanner.new_page()
        verify.set_default_timeout(20000)
        verify.goto(scans[0])
        card = verify.locator("#verification")
        assert card.get_attribute("data-state") == "valid"
        assert verify.locator("#verify-name").inner_text() == "张*三"
        assert verify.locator("#verify-number").inner_text() == certificate.number
        assert verify.locator("#verify-round").inner_text() == training_round.title
        assert "张小三" not in verify.content()
    finally:
        phone.close()
        scanner.close()
