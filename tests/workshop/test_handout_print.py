"""A handout printed from Chromium on A4 and Letter: nothing runs off the page (fingerprints wrap)."""

from __future__ import annotations

import pytest
from support.browser import chromium

from kittylab.workshop.roster import issue_roster

pytestmark = [pytest.mark.browser]

#: The printable width in CSS pixels (96 per inch) once the handout's 15 mm page margins are taken off.
PAPER = {"A4": (210 - 30) / 25.4 * 96, "Letter": (8.5 * 25.4 - 30) / 25.4 * 96}
# Every element that sticks out to the right of the page, or whose content is wider than itself.
OVERFLOWING = """() => {
  const width = document.documentElement.clientWidth;
  const found = [];
  for (const element of document.querySelectorAll('body *')) {
    const box = element.getBoundingClientRect();
    if (box.right > width + 0.5 || (element.clientWidth > 0 && element.scrollWidth > element.clientWidth + 1)) {
      found.push(`${element.tagName}.${element.className}: ${element.textContent.slice(0, 60)}`);
    }
  }
  if (document.documentElement.scrollWidth > width) found.push('the page itself');
  return found;
}"""


@pytest.fixture
def handout(workspace, tmp_path):
    """A handout with everything long: name, email, OU, URL and the two fingerprints."""
    roster = tmp_path / "class.csv"
    roster.write_text(
        "name,email,ou\n"
        "Maximiliane Friederike Ødegård-Papadopoulou Wróbel,maximiliane.friederike.odegard@very-long-department"
        ".university.example.test,\"Research, Development and Very Long Departmental Unit Names\"\n",
        encoding="utf-8",
    )
    result = issue_roster(workspace, roster, url="https://pictures.workshop.university.example.test:8443/gallery/",
                          workers=1, progress=False)
    (file, _), = result.issued
    return result.out / "handouts" / file / f"{file}.html"


@pytest.fixture(scope="module")
def browser():
    with chromium() as browser:
        yield browser


@pytest.mark.parametrize("paper", sorted(PAPER))
def test_nothing_overflows_the_printed_page(browser, handout, paper):
    page = browser.new_page(viewport={"width": int(PAPER[paper]), "height": 1000})
    try:
        page.goto(handout.as_uri())
        page.emulate_media(media="print")
        assert page.evaluate(OVERFLOWING) == []
        fingerprint = page.locator("td .line").last
        assert fingerprint.bounding_box()["width"] < PAPER[paper]
        pdf = page.pdf(format=paper)  # Chromium prints it
        assert pdf.startswith(b"%PDF")
    finally:
        page.close()


def test_the_handout_says_what_the_review_asked(handout):
    page = handout.read_text(encoding="utf-8")
    assert "OU = Research, Development and Very Long Departmental Unit Names" in page  # no RFC 4514 escape
    assert "Research\\, Development" not in page
    assert "3DES with a SHA-1 MAC" in page and "on a Mac, unless your teacher tested otherwise, ask your teacher for a legacy one" in page
    assert "only after checking that its SHA-256 fingerprint" in page and "remove the workshop's CA" in page
    assert "by their subject's common name (CN)" in page and "<b>Maximiliane Friederike" in page
    assert "<b>Your certificates</b>" in page and "<b>Local certificates</b>" in page
