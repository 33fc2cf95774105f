"""The page to try a model, in a real headless Chromium: typing a text and a question, sending, and reading the
highlighted entities, the classification label and the answer, checked against the API's own answer.

Chromium and its driver are the distribution's packages (``.ci/run`` installs them); selenium is pointed at
``/usr/bin/chromedriver`` so that it never downloads a browser.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import httpx
import pytest
from test_serving import running_server

CHROMEDRIVER = Path("/usr/bin/chromedriver")
TEXT = "angela merkel met officials of siemens in munich on tuesday ."
QUESTION = "who met officials ?"

if not CHROMEDRIVER.exists() and not os.environ.get("CI"):
    pytest.skip(
        "Chromium's driver is not installed (apt-get install chromium chromium-driver)", allow_module_level=True
    )

from selenium import webdriver  # noqa: E402  (only when the browser is there)
from selenium.webdriver.chrome.service import Service  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.common.keys import Keys  # noqa: E402
from selenium.webdriver.support import expected_conditions  # noqa: E402
from selenium.webdriver.support.ui import WebDriverWait  # noqa: E402


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    options = webdriver.ChromeOptions()
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1100,1000"):
        options.add_argument(argument)
    options.binary_location = shutil.which("chromium") or "/usr/bin/chromium"
    driver = webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=options)
    yield driver
    driver.quit()


@pytest.fixture(scope="module")
def page_server(tiny_model_dir, tmp_path_factory):
    from test_onnx_backend import save_demo_model

    model_dir = save_demo_model(tmp_path_factory.mktemp("page-model"), tiny_model_dir)
    with running_server(model_dir, tmp_path_factory.mktemp("page") / "server.log", "--max-texts", "4") as server:
        yield server


def marks(browser, task: str) -> list[tuple[str, str, int, int]]:
    """The highlighted spans of a task: (text without its tag, label, start, end)."""
    found = []
    for mark in browser.find_elements(By.CSS_SELECTOR, f'section[data-task="{task}"] mark'):
        tag = mark.find_element(By.CSS_SELECTOR, ".tag").text
        text = mark.text[: len(mark.text) - len(tag)].strip()
        found.append(
            (
                text,
                mark.get_attribute("data-label"),
                int(mark.get_attribute("data-start")),
                int(mark.get_attribute("data-end")),
            )
        )
    return found


def test_the_page_shows_the_apis_entities_label_and_answer(browser, page_server, tmp_path):
    expected = httpx.post(f"{page_server.url}/v1/predict", json={"texts": [TEXT], "questions": [QUESTION]}).json()
    expected = expected["results"][0]
    assert expected["ner"], "the demo model should predict entities"
    browser.get(page_server.url + "/")
    wait = WebDriverWait(browser, 30)
    wait.until(expected_conditions.visibility_of_element_located((By.ID, "question")))  # the model has a QA task
    assert "ner (token classification)" in browser.find_element(By.ID, "model-summary").text
    text_box = browser.find_element(By.ID, "text")
    assert browser.find_element(By.CSS_SELECTOR, 'label[for="text"]').text == "Text"
    text_box.clear()
    text_box.send_keys(TEXT)
    browser.find_element(By.ID, "question").send_keys(QUESTION)
    text_box.send_keys(Keys.CONTROL, Keys.ENTER)  # the keyboard alone sends it
    wait.until(expected_conditions.presence_of_element_located((By.CSS_SELECTOR, 'section[data-task="sentiment"]')))
    screenshot = Path(os.environ.get("MTL_NLP_SCREENSHOT_DIR", tmp_path)) / "serving_page.png"
    browser.save_screenshot(str(screenshot))
    assert screenshot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    assert marks(browser, "ner") == [
        (entity["word"], entity["entity_group"], entity["start"], entity["end"]) for entity in expected["ner"]
    ]
    label = browser.find_element(By.CSS_SELECTOR, 'section[data-task="sentiment"] .classification')
    assert label.get_attribute("data-label") == expected["sentiment"]["label"]
    assert f"{100 * expected['sentiment']['score']:.1f}%" in label.text
    answer = expected["qa"]
    if answer["answer"]:
        assert marks(browser, "qa") == [(answer["answer"], "answer", answer["start"], answer["end"])]
    annotated = browser.find_element(By.CSS_SELECTOR, 'section[data-task="ner"] .annotated')
    tags = [tag.text for tag in annotated.find_elements(By.CSS_SELECTOR, ".tag")]
    assert annotated.text.replace(" ".join(tags), "") != ""  # the text itself is shown around the highlights


def test_the_page_shows_the_apis_error_messages(browser, page_server):
    browser.get(page_server.url + "/")
    wait = WebDriverWait(browser, 30)
    wait.until(expected_conditions.visibility_of_element_located((By.ID, "question")))
    text_box = browser.find_element(By.ID, "text")
    text_box.clear()
    text_box.send_keys("   ")
    browser.find_element(By.ID, "submit").click()
    error = browser.find_element(By.ID, "error")
    assert error.is_displayed() and "Type or paste some text" in error.text
    browser.execute_script("arguments[0].value = arguments[1]", text_box, "word " * 2100)  # over 10,000 characters
    browser.find_element(By.ID, "submit").click()
    wait.until(lambda driver: "413" in driver.find_element(By.ID, "error").text)
    message = browser.find_element(By.ID, "error").text
    assert "10000" in message and "texts.0" in message and error.get_attribute("role") == "alert"
