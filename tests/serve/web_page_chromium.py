"""The chat page at / in headless Chromium (selenium + Debian's chromedriver): type a message, see
the streamed reply appear, compare it with the same greedy request through the API, stop a long
reply, reset the conversation, and save screenshots into build/test-output/.
Usage: web_page_chromium.py FORMA MODEL_DIR SCRATCH"""
import json
import os
import sys
import time

from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support.ui import WebDriverWait

from serve_util import Server

FORMA, MODEL, SCRATCH = sys.argv[1:4]
# Screenshots outlive the scratch folder: next to the binary, in build/test-output/.
SHOTS = os.path.join(os.path.dirname(os.path.abspath(FORMA)), "test-output")
os.makedirs(SHOTS, exist_ok=True)


def main():
    server = Server(FORMA, MODEL, SCRATCH)
    options = webdriver.ChromeOptions()
    options.binary_location = "/usr/bin/chromium"
    for arg in ["--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                f"--user-data-dir={os.path.join(SCRATCH, 'chromium-profile')}"]:
        options.add_argument(arg)
    driver = webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=options)
    failures = []
    try:
        driver.get(server.url + "/")
        wait = WebDriverWait(driver, 60)
        wait.until(lambda d: d.find_element(By.ID, "model").text == "tiny")
        for field, value in [("system", "Be brief."), ("temperature", "0"), ("max_tokens", "12")]:
            box = driver.find_element(By.ID, field)
            box.clear()
            box.send_keys(value)
        driver.find_element(By.ID, "input").send_keys("Hello there" + Keys.ENTER)
        wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, ".msg.assistant[data-done='true'], .msg.error"))
        reply = driver.find_elements(By.CSS_SELECTOR, ".msg.assistant")
        driver.save_screenshot(os.path.join(SHOTS, "serve-chat.png"))
        status, body = server.raw("POST", "/v1/chat/completions", {
            "model": "tiny", "temperature": 0, "max_tokens": 12,
            "messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hello there"}]})
        want = json.loads(body)["choices"][0]["message"]["content"]
        if not reply or reply[0].text != want.strip():
            # textContent keeps spaces that .text trims; compare that too.
            got = reply[0].get_attribute("textContent") if reply else None
            if got != want:
                failures.append(f"page shows {got!r}, the API gives {want!r}")
        # A long reply, stopped: the page keeps what came and takes the next message.
        box = driver.find_element(By.ID, "max_tokens")
        box.clear()
        box.send_keys("900")
        driver.find_element(By.ID, "input").send_keys("Tell me more" + Keys.ENTER)
        wait.until(lambda d: len(d.find_elements(By.CSS_SELECTOR, ".msg.assistant")) == 2)
        time.sleep(0.2)
        driver.find_element(By.ID, "stop").click()
        wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, ".msg.assistant")[1].get_attribute("data-done") == "true")
        driver.save_screenshot(os.path.join(SHOTS, "serve-chat-stopped.png"))
        driver.find_element(By.ID, "reset").click()
        if driver.find_elements(By.CSS_SELECTOR, ".msg"):
            failures.append("reset left messages on the page")
    finally:
        driver.quit()
        code = server.stop()
    if code != 0:
        failures.append(f"exit status {code}")
    for f in failures:
        print("FAIL:", f)
    print("screenshots:", os.path.join(SHOTS, "serve-chat.png"))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
