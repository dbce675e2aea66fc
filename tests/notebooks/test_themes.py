"""kittylab's output in JupyterLab Light and Dark: every text element readable, at least 4.5:1
(WCAG AA), measured in the page by Chromium; the gallery page too.

One notebook shows each kind of output kittylab draws: the cards (certificate in every status,
CSR, key, CRL, p12, verification), the side-by-side OpenSSL run, a table, an exercise's hint, the
forms with a message of each tone and a field's error, and the dashboard. The contrast of each
element with its own text is taken from the computed colours (alpha composited over the first
backgrounds behind it, CSS colour functions resolved by a canvas). Screenshots in
test-artifacts/themes/.
"""

from __future__ import annotations

import pytest
import support.lab as jupyter

from kittylab.render.gallery import gallery_page

pytestmark = [pytest.mark.browser, pytest.mark.slow]

AA = 4.5
THEMES = ["JupyterLab Light", "JupyterLab Dark"]
CELLS = [
    "import datetime as dt\n"
    "from kittylab import Workspace, load_p12\n"
    "from kittylab.ui import tutorial\n"
    "from kittylab.ui.widgets import Dashboard, IssueClientForm, SubjectForm\n"
    'ws = Workspace("kitty-workspace")\n'
    'ws.init_ca("/C=DE/O=Kitty Inc/CN=kitty-ca", key="p256")\n'
    'server = ws.issue("picture-server", profile="server", key="p256", dns=["localhost"])\n'
    'client = ws.issue("eager-client", profile="client", key="p256", p12=True, p12_password="kitty-pass")\n'
    'ws.issue("soon-gone", profile="client", key="p256", days=5)\n'
    'ws.issue("gone", profile="client", key="p256")\n'
    'ws.revoke("gone", reason="key-compromise")',
    "display(client, server.key, ws.current_crl(), load_p12(client.files['p12'], password='kitty-pass'))\n"
    "display(ws.find('soon-gone'), ws.find('gone'), ws.verify(ws.find('gone').certificate))\n"
    "from kittylab import load_csr\n"
    "display(load_csr(client.files['csr']) if 'csr' in client.files else server.certificate)",
    'tutorial.openssl_side_by_side("openssl x509 -in kitty-ca.crt -noout -subject", workspace=ws, kittylab=True)',
    "display(tutorial.workspace_files(ws))\n"
    'tutorial.exercise("client-purpose").check(lambda: ws.verify(client.certificate, purpose="server"))',
    'form = IssueClientForm(ws, key="p256")\n'
    'form.subject.fields["c"].value = "Germany"\n'
    "form.submit()\n"
    "done = IssueClientForm(ws, key=\"p256\", name=\"calm-client\")\n"
    "done.submit()\n"
    "display(form, done)",
    "display(Dashboard(ws))",
]
# Every element with text of its own inside the notebook's outputs (SVG text is drawn on its own
# boxes and left out), with the contrast of that text against what is behind it.
_CONTRASTS = """async root => {
    if (typeof root === 'number') {  // a cell of the open notebook: bring it into view, let it draw
        const notebook = window.jupyterapp.shell.currentWidget.content;
        await notebook.scrollToItem(root, 'start');
        await new Promise(resolve => setTimeout(resolve, 300));
        root = notebook.widgets[root].outputArea.node;
    } else {
        root = document.querySelector(root);
    }
    const canvas = document.createElement('canvas'); canvas.width = canvas.height = 1;
    const ctx = canvas.getContext('2d', {willReadFrequently: true});
    const rgba = css => { ctx.clearRect(0, 0, 1, 1); ctx.fillStyle = '#000'; ctx.fillStyle = css;
        ctx.fillRect(0, 0, 1, 1); const d = ctx.getImageData(0, 0, 1, 1).data; return [d[0], d[1], d[2], d[3] / 255]; };
    const over = (top, bottom) => [0, 1, 2].map(i => top[i] * top[3] + bottom[i] * (1 - top[3])).concat([1]);
    const background = el => {
        const layers = [];
        for (let node = el; node && node.nodeType === 1; node = node.parentElement) {
            const c = rgba(getComputedStyle(node).backgroundColor);
            if (c[3] > 0) { layers.push(c); if (c[3] >= 1) break; }
        }
        let colour = [255, 255, 255, 1];
        if (!layers.length || layers[layers.length - 1][3] < 1) colour = rgba(getComputedStyle(document.body).backgroundColor);
        for (const layer of layers.reverse()) colour = over(layer, colour);
        return colour;
    };
    const lum = c => { const f = v => { v /= 255; return v <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4; };
        return 0.2126 * f(c[0]) + 0.7152 * f(c[1]) + 0.0722 * f(c[2]); };
    const found = [];
    for (const el of root.querySelectorAll('*')) {
        if (el.closest('svg') || ['STYLE', 'SCRIPT'].includes(el.tagName)) continue;
        const own = Array.from(el.childNodes).filter(n => n.nodeType === 3 && n.textContent.trim()).map(n => n.textContent.trim()).join(' ');
        const box = el.getBoundingClientRect();
        if (!own || box.width === 0 || box.height === 0 || getComputedStyle(el).visibility === 'hidden') continue;
        const bg = background(el), fg = over(rgba(getComputedStyle(el).color), bg);
        const [a, b] = [lum(fg), lum(bg)].sort((x, y) => y - x);
        found.push({text: own.slice(0, 200), cls: String(el.className).slice(0, 60), ratio: (a + 0.05) / (b + 0.05)});
    }
    return found;
}"""


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    folder = tmp_path_factory.mktemp("themes")
    jupyter.write_notebook(folder / "outputs.ipynb", CELLS)
    with jupyter.ran_notebook(folder, "outputs.ipynb", height=4000, timeout_ms=120_000) as (_, page):
        yield page


def _low(found: list[dict]) -> list[dict]:
    return [item for item in found if item["ratio"] < AA]


@pytest.mark.parametrize("theme", THEMES)
def test_every_text_of_kittylabs_output_is_readable(lab, theme):
    page = lab
    page.evaluate("t => window.jupyterapp.commands.execute('apputils:change-theme', {theme: t})", theme)
    page.wait_for_function("light => document.body.dataset.jpThemeLight === light", arg=str(theme.endswith("Light")).lower())
    page.wait_for_timeout(1000)  # the theme's stylesheet applies
    found = [item for cell in range(len(CELLS)) for item in page.evaluate(_CONTRASTS, cell)]
    jupyter.screenshot(page, theme.replace(" ", "-").lower(), folder="themes")
    texts = " ".join(item["text"] for item in found)
    for expected in ("Certificate eager-client", "expiring", "revoked", "country (C)", "issued calm-client", "they agree"):
        assert expected in texts, f"{expected!r} not measured"
    assert len(found) > 100
    assert not _low(found), f"{theme}: below {AA}:1: {_low(found)[:8]}"


def test_the_gallery_page_is_readable(lab):
    page = lab.context.browser.new_page()
    greeting = {"cn": "eager-client", "serial": "0A1B2C", "not_after": "2027-12-10 03:16 UTC", "issuer": "kitty-ca",
                "subject": "CN=eager-client,O=Kitty Inc,C=DE"}  # fmt: skip
    page.set_content(gallery_page(greeting, server_name="picture-server", ca_name="kitty-ca").replace(
        '<main class="kl-gallery"', '<main class="kl-gallery kl-measure"'))
    found = page.evaluate(_CONTRASTS, ".kl-measure")
    assert any("Once your certificate is revoked" in item["text"] for item in found)
    assert not _low(found), _low(found)
    page.close()
