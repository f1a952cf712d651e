"""A real Chromium (Debian's /usr/bin/chromium) driven by Playwright against the live server.

No browser is downloaded: Playwright only brings its driver. If Chromium is missing the tests
fail loudly (`make test` installs it as root, or prints the apt-get command).
"""

import os

import pytest

CHROMIUM = os.environ.get("LUNXUN_CHROMIUM", "/usr/bin/chromium")
# Without these, Chromium on this closed network spends its time on refused background calls.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]

# Playwright's sync API runs an event loop in the test thread; the Django ORM calls that the
# tests make between browser steps are still ordinary synchronous calls.
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")


@pytest.fixture(scope="session")
def playwright_driver():
    from playwright.sync_api import sync_playwright

    if not os.path.exists(CHROMIUM):
        pytest.fail(f"Chromium not found at {CHROMIUM}: apt-get install chromium")
    with sync_playwright() as playwright:
        yield playwright


@pytest.fixture(scope="session")
def browser(playwright_driver):
    browser = playwright_driver.chromium.launch(
        executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS
    )
    yield browser
    browser.close()


@pytest.fixture
def camera_browser(playwright_driver, live_server):
    """A second Chromium, as a site PC: a persistent profile in ``profile`` (IndexedDB, Cache
    Storage and service workers survive closing it, as a reboot) and a fake camera that loops
    ``camera_file`` (a .y4m or .mjpeg). Call it again with the same profile to restart it."""
    opened = []

    def launch(profile, camera_file):
        context = playwright_driver.chromium.launch_persistent_context(
            str(profile),
            executable_path=CHROMIUM,
            headless=True,
            args=[
                *CHROMIUM_ARGS,
                "--use-fake-device-for-media-stream",
                "--use-fake-ui-for-media-stream",
                f"--use-file-for-fake-video-capture={camera_file}",
            ],
            base_url=live_server.url,
            locale="zh-CN",
            viewport={"width": 1280, "height": 900},
            permissions=["camera"],
        )
        context.set_default_timeout(20000)
        opened.append(context)
        return context

    yield launch
    for context in opened:
        try:
            context.close()
        except Exception:  # already closed by the test (a restart)
            pass


@pytest.fixture
def phone_page(browser, live_server):
    """A page the size of a 360 px phone, speaking Chinese."""
    context = browser.new_context(
        viewport={"width": 360, "height": 740}, locale="zh-CN", base_url=live_server.url
    )
    page = context.new_page()
    page.set_default_timeout(15000)
    yield page
    context.close()
