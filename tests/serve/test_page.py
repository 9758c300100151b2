"""The live-captions page in a real headless Chromium whose microphone plays a real recording: the
captions read from the page match the recording's known text."""

import time

import pytest

from tests.conftest import asset
from tests.serve import browser
from tests.serve.conftest import TOKEN, http_url, running
from benchmarks.corpus import BECKETT
from benchmarks.wer import corpus_wer

pytest.importorskip("selenium", reason="the page is driven with selenium (the test extra)")
from selenium.webdriver import ActionChains  # noqa: E402
if not browser.available():
    pytest.fail("chromium and chromedriver are missing: `make system-deps` installs them", pytrace=False)

LIVE_WER = 0.15

CAPTIONS = "return [document.getElementById('final').textContent, document.getElementById('partial').textContent]"
STATUS = "return [document.getElementById('status').textContent, document.body.className]"


def wait_for(driver, script, done, timeout):
    deadline = time.monotonic() + timeout
    while True:
        value = driver.execute_script(script)
        if done(value) or time.monotonic() > deadline:
            return value
        time.sleep(0.5)


@pytest.fixture(scope="module")
def chromium(tmp_path_factory):
    with browser.chromium(tmp_path_factory.mktemp("chromium-profile"), asset("beckett.wav")) as driver:
        yield driver


def test_captions_match_what_the_microphone_hears(engine, chromium, tmp_path):
    with running(engine) as server:
        chromium.get(http_url(server, "/?theme=dark"))
        chromium.find_element("id", "start").click()
        wait_for(chromium, CAPTIONS, lambda c: len(c[0].split()) >= 4 and c[1].strip(), 30)
        ActionChains(chromium).move_by_offset(5, 5).perform()  # the pointer wakes the controls
        chromium.save_screenshot(str(tmp_path / "captions.png"))  # docs/captions.png
        # the recording lasts 10 s; its last words become final once the silence after it confirms them
        final, partial = wait_for(chromium, CAPTIONS, lambda c: corpus_wer([BECKETT], [c[0]]) <= 0.1, 40)
        print(f"captions: {final!r} (partial {partial!r}); screenshot {tmp_path / 'captions.png'}")
        assert corpus_wer([BECKETT], [final]) <= LIVE_WER
        origin = http_url(server)
        resources = chromium.execute_script("return performance.getEntriesByType('resource').map(e => e.name)")
        assert resources and all(r.startswith(origin) for r in resources)  # nothing from elsewhere: works offline
        style = chromium.execute_script("const s = getComputedStyle(document.getElementById('text')); "
                                        "return [parseFloat(s.fontSize), getComputedStyle(document.body).backgroundColor]")
        assert style[0] >= 28 and style[1] == "rgb(11, 13, 16)"  # large text; dark as asked
        chromium.find_element("id", "theme").click()
        assert chromium.execute_script("return getComputedStyle(document.body).backgroundColor") == "rgb(251, 251, 248)"


def test_the_page_says_when_it_is_not_authorised(engine, chromium):
    with running(engine, token=TOKEN) as server:
        chromium.get(http_url(server, "/"))
        chromium.find_element("id", "start").click()
        status, body = wait_for(chromium, STATUS, lambda s: "refused" in s[1], 20)
        assert "refused" in body and status.startswith("Not authorised") and "token" in status
        chromium.get(http_url(server, f"/?token={TOKEN}"))
        chromium.find_element("id", "start").click()
        status, body = wait_for(chromium, STATUS, lambda s: s[0].startswith("Listening"), 20)
        assert status.startswith("Listening") and "refused" not in body
