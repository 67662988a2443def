"""The asa-serve page in headless Chromium: it uploads two files and shows the
score, the per-segment flags and the report's plot (issue 21)."""

import json
import os
import shutil
import time

import pytest

from tests import serve_helpers

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.mark.timeout(1200)
@pytest.mark.skipif(not CHROMIUM and not os.environ.get("ASA_REQUIRE_BROWSER"),
                    reason="Chromium not installed (.ci/run installs it)")
def test_page_uploads_two_files_and_shows_the_score(tmp_path):
  assert CHROMIUM, "ASA_REQUIRE_BROWSER is set but Chromium is missing"
  os.makedirs(tmp_path / "audio")
  audio = serve_helpers.write_audio(tmp_path / "audio")
  calibration = serve_helpers.calibration_file(tmp_path / "cal.json")
  server = serve_helpers.Server(
      ["--baseline=dtw_melody", f"--calibration={calibration}",
       f"--state-dir={tmp_path / 'state'}", "--api-key=page-key"],
      tmp_path / "serve.log")
  browser = None
  try:
    server.wait_ready(600)
    browser = serve_helpers.Chromium(CHROMIUM, str(tmp_path / "profile"))
    browser.open(server.url + "/")
    # The API key guards the page too: refused without it ...
    assert "X-API-Key" in browser.evaluate("document.body.innerText")
    # ... and served to a browser that sends it (as a proxy in front would).
    browser.send("Network.enable")
    browser.send("Network.setExtraHTTPHeaders", headers={"X-API-Key": "page-key"})
    browser.open(server.url + "/")
    assert browser.evaluate("document.title").startswith("asa-serve")
    browser.set_file("#performance", audio["performance"])
    browser.set_file("#reference", audio["reference"])
    browser.evaluate("document.getElementById('score_button').click()")
    end = time.monotonic() + 600
    while not (shown := browser.evaluate(
        "document.body.dataset.result || document.body.dataset.error || ''")):
      assert time.monotonic() < end, "no score shown in 600 s"
      time.sleep(0.5)
    assert not browser.evaluate("document.body.dataset.error || ''"), shown
    rendered = json.loads(shown)
    score = int(rendered["score"].split("/")[0])
    assert 0 <= score <= 100
    assert rendered["segment_rows"] == 5  # 15 s in 3 s windows.
    assert "wrong_note" in rendered["flags"][2]  # the phrase 100 cents off.
    assert rendered["plot_width"] > 500  # the report's PNG plot was decoded.
    # The reference was uploaded once and is offered for the next scoring.
    assert browser.evaluate("document.getElementById('reference_id').length") == 2
  finally:
    if browser:
      browser.close()
    server.stop()
