"""The web console in a real browser (headless Debian chromium, Selenium + chromium-driver).

Against a running loop: a registry with a served champion, a real predictor, the
console as ``driftloop ui`` in its own process, both behind the same token (as the
chart runs them): the browser is sent to the login page and logs in first. Each
page must load without a console error; a prediction made through the form must
be the predictor's own answer; a feedback button must land a row in the store; the
AutoML studio must launch a training run that finishes. Every page is saved to docs/screenshots/.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from driftloop.ports import free_port
from tests.integration.conftest_serving import register_text_model, running_predictor

pytestmark = [pytest.mark.integration, pytest.mark.slow]

CHROMIUM = shutil.which("chromium")
CHROMEDRIVER = shutil.which("chromedriver")
SCREENSHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"
MODEL = "sentiment-ui"
TOKEN = "browser-test-token-5f1c"  # the predictor's and the console's, as the chart gives both
# a kfp.local training run: about a minute on an idle 2-core machine, minutes under load
AUTOML_TIMEOUT_S = 540.0

if not (CHROMIUM and CHROMEDRIVER):
    pytest.skip(
        "chromium and chromium-driver are not installed (scripts/install-system-deps.sh)",
        allow_module_level=True,
    )
webdriver = pytest.importorskip("selenium.webdriver")


@pytest.fixture(scope="module")
def loop(tmp_path_factory):
    """A champion in a registry, the predictor serving it, the console in front of both."""
    home = tmp_path_factory.mktemp("console-home")
    tracking = f"sqlite:///{home / 'mlflow.db'}"
    version = register_text_model(tracking, MODEL)
    env = {
        **os.environ,
        "DRIFTLOOP_HOME": str(home),
        "MLFLOW_TRACKING_URI": tracking,
        "DRIFTLOOP_RELOAD_INTERVAL_S": "0",
    }
    for name in ("DRIFTLOOP_STORE_URL", "DRIFTLOOP_PROMETHEUS_URL"):
        env.pop(name, None)
    env["DRIFTLOOP_API_TOKEN"] = TOKEN
    with running_predictor(MODEL, home, env=env) as predictor:
        port = free_port()
        log = open(home / "console.log", "wb")  # noqa: SIM115 - closed below
        console = subprocess.Popen(
            [
                sys.executable,
                "-c",
                "import sys; from driftloop.cli import main; sys.exit(main())",
                "ui",
                "--port",
                str(port),
                "--predictor-url",
                predictor.url,
                "--monitor-url",
                f"http://127.0.0.1:{free_port()}",
                "--trigger-url",
                f"http://127.0.0.1:{free_port()}",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
        )
        url = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + 60
            while True:
                assert console.poll() is None, (home / "console.log").read_text()
                try:
                    if httpx.get(f"{url}/healthz", timeout=2).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                assert time.monotonic() < deadline, "console not healthy in 60 s"
                time.sleep(0.2)
            yield {
                "url": url,
                "home": home,
                "predictor": predictor,
                "version": version,
                "tracking": tracking,
            }
        finally:
            console.terminate()
            console.wait(15)
            log.close()


@pytest.fixture(scope="module")
def browser():
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for argument in (
        "--headless=new",
        "--no-sandbox",
        "--disable-dev-shm-usage",
        "--disable-gpu",
        "--window-size=1280,1000",
    ):
        options.add_argument(argument)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(60)
    yield driver
    driver.quit()


def console_errors(driver) -> list[str]:
    return [entry["message"] for entry in driver.get_log("browser") if entry["level"] == "SEVERE"]


def visit(driver, url: str, shot: str | None = None) -> None:
    driver.get_log("browser")  # drop what earlier pages logged
    driver.get(url)
    errors = console_errors(driver)
    assert not errors, f"{url}: {errors}"
    if shot:
        save(driver, shot)


def save(driver, name: str) -> None:
    """The whole page (not just the window) as docs/screenshots/NAME.png."""
    import base64

    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    size = driver.execute_cdp_cmd("Page.getLayoutMetrics", {})["cssContentSize"]
    clip = {"x": 0, "y": 0, "width": size["width"], "height": min(size["height"], 4000), "scale": 1}
    shot = driver.execute_cdp_cmd(
        "Page.captureScreenshot", {"format": "png", "captureBeyondViewport": True, "clip": clip}
    )
    (SCREENSHOTS / f"{name}.png").write_bytes(base64.b64decode(shot["data"]))


def wait_for(predicate, timeout_s: float, what: str):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.3)
    raise AssertionError(f"{what} not seen in {timeout_s:.0f} s")


def test_the_console_asks_for_the_predictors_token_first(loop, browser):
    from selenium.webdriver.common.by import By

    url = loop["url"]
    visit(browser, f"{url}/models")  # sent on to the login form, which loads cleanly
    assert "/login?next=%2Fmodels" in browser.current_url
    assert not browser.find_elements(By.ID, "models")
    browser.find_element(By.ID, "login-token").send_keys("not-the-token")
    browser.find_element(By.ID, "login-button").click()
    error = wait_for(lambda: browser.find_elements(By.ID, "login-error"), 30, "the refusal")
    assert "not the console's token" in error[0].text
    browser.get_log("browser")  # the refusal is a 401: the browser logs it, as it should

    browser.find_element(By.ID, "login-token").send_keys(TOKEN)
    browser.find_element(By.ID, "login-button").click()
    wait_for(lambda: browser.find_elements(By.ID, "models"), 30, "the models page")
    assert browser.current_url == f"{url}/models"
    assert MODEL in browser.find_element(By.ID, "models").text
    assert not console_errors(browser)
    # the session is a cookie derived from the token, not the token itself
    (session,) = [c for c in browser.get_cookies() if c["name"] == "driftloop_console_session"]
    assert session["httpOnly"] and session["value"] != TOKEN


def test_every_page_loads_without_console_errors(loop, browser):
    from selenium.webdriver.common.by import By

    url = loop["url"]
    visit(browser, f"{url}/models", "models")
    assert MODEL in browser.find_element(By.ID, "models").text
    visit(browser, f"{url}/models/{MODEL}", "model")
    versions = browser.find_element(By.ID, "versions").text
    assert f"v{loop['version']}" in versions and "champion" in versions
    assert browser.find_element(By.CSS_SELECTOR, "#drift-plot svg")
    assert browser.find_element(By.CSS_SELECTOR, "#score-plot svg")
    visit(browser, f"{url}/runs", "runs")
    visit(browser, f"{url}/automl", "automl")
    visit(browser, f"{url}/predict", None)
    assert browser.find_element(By.NAME, "text")


def test_prediction_through_the_form_is_the_served_answer_and_feedback_is_stored(loop, browser):
    from selenium.webdriver.common.by import By

    from driftloop.serving.client import PredictorClient
    from driftloop.store import PredictionStore

    text = "terrible product, broke after a day"
    with PredictorClient(loop["predictor"].url, token=TOKEN) as client:
        expected = client.predict(MODEL, [text])[0].output["label"]

    visit(browser, f"{loop['url']}/predict?model={MODEL}")
    browser.find_element(By.NAME, "text").send_keys(text)
    browser.find_element(By.ID, "predict-button").click()
    label = wait_for(lambda: browser.find_elements(By.ID, "answer-label"), 30, "an answer")[0].text
    assert label == expected
    request_id = browser.find_element(By.ID, "request-id").text
    assert request_id
    assert not console_errors(browser)

    truth = "positive" if expected == "negative" else "negative"
    browser.find_element(By.XPATH, f"//button[contains(., '“{truth}”')]").click()
    status = browser.find_element(By.ID, "feedback-status")
    wait_for(lambda: "recorded" in status.text or "refused" in status.text, 30, "feedback status")
    assert "recorded" in status.text, status.text
    save(browser, "predict")

    store = PredictionStore(f"sqlite:///{loop['home'] / 'store.db'}", run_migrations=False)
    try:
        history = store.feedback_history(request_id)
    finally:
        store.close()
    assert [(f.label, f.source) for f in history] == [(truth, "console")]
    assert not console_errors(browser)


@pytest.mark.timeout(900)
def test_automl_studio_launches_a_training_run_that_finishes(loop, browser, tmp_path):
    from palmerpenguins import load_penguins
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    table = load_penguins().dropna()[
        ["bill_length_mm", "bill_depth_mm", "flipper_length_mm", "body_mass_g", "species"]
    ]
    csv = tmp_path / "penguins.csv"
    table.to_csv(csv, index=False)

    visit(browser, f"{loop['url']}/automl")
    browser.find_element(By.NAME, "file").send_keys(str(csv))
    browser.find_element(By.ID, "upload-button").click()
    Select(
        wait_for(lambda: browser.find_elements(By.NAME, "target"), 30, "the launch form")[0]
    ).select_by_visible_text("species")
    Select(browser.find_element(By.NAME, "preset")).select_by_visible_text("fast")
    browser.find_element(By.NAME, "model_name").clear()
    browser.find_element(By.NAME, "model_name").send_keys("penguins-ui")
    browser.find_element(By.ID, "launch-button").click()
    state = wait_for(lambda: browser.find_elements(By.ID, "job-state"), 30, "the job page")[0]
    assert state.text == "running"
    assert not console_errors(browser)
    # the page reloads itself when the job ends
    wait_for(
        lambda: (s := browser.find_elements(By.ID, "job-state")) and s[0].text != "running",
        AUTOML_TIMEOUT_S,
        "the AutoML run's end",
    )
    final = browser.find_element(By.ID, "job-state").text
    log = browser.find_elements(By.ID, "job-log")
    assert final == "succeeded", log[0].text if log else final
    assert browser.find_element(By.ID, "job-version").text == "1"
    assert browser.find_element(By.ID, "job-decision").text == "promote"
    assert browser.find_element(By.CSS_SELECTOR, "#candidates-plot svg")
    assert not console_errors(browser)
    save(browser, "automl-job")
    # the new model's page shows the gate's decision with both scores and the split fingerprints
    visit(browser, f"{loop['url']}/models/penguins-ui", "model-gate")
    versions = browser.find_element(By.ID, "versions").text
    assert "promote" in versions and "test:" in versions
    # the run is listed among the pipeline runs on this machine
    visit(browser, f"{loop['url']}/runs", "runs")
    assert "training" in browser.find_element(By.ID, "local-runs").text
