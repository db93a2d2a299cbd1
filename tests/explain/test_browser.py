"""The explainer page in a real browser: Debian's headless Chromium, driven by Playwright.

The page is loaded from a file and from ``tconv serve`` (started here on 127.0.0.1, port 0).
The highlighted cells are compared with the incidence of the transposed convolution computed
independently (tconv.conv_transpose of one-hot gradients and kernels, see test_page.py); every
request the page makes is recorded and must stay on file:// or the local server.

Chromium comes from Debian (``make chromium``, which ``make test`` runs); no browser is
downloaded. Without it these tests fail, saying how to install it.
"""
import math
import os
from pathlib import Path

import pytest

from tconv.explain import page
from tconv.explain.story import sample_data
from tconv.spec import ConvSpec

from test_page import SPECS, _scatter_incidence, serving

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]
WIDTHS = (360, 1280, 3840)


def expect(locator):
    """Playwright's waiting assertions (imported here: the browser fixture says when
    Playwright is missing)."""
    from playwright import sync_api

    return sync_api.expect(locator)


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    if not os.path.exists(CHROMIUM):
        pytest.fail(f"Chromium is not installed at {CHROMIUM}: `make chromium` installs it from "
                    "Debian's packages (apt-get install -y chromium); `make test` does so too",
                    pytrace=False)
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.fail("Playwright is not installed: `make` installs the test extra "
                    "(pip install -c constraints.txt -e '.[test]')", pytrace=False)
    with sync_playwright() as p:
        context = p.chromium.launch_persistent_context(
            str(tmp_path_factory.mktemp("chromium-profile")), executable_path=CHROMIUM,
            headless=True, args=ARGS, viewport={"width": 1280, "height": 900},
            service_workers="block")
        yield context
        context.close()


class Guard:
    """Records every request of a page; only file:// and the given local origin may load."""

    def __init__(self, allowed=("file://",)):
        self.allowed = tuple(allowed)
        self.seen, self.refused = [], []

    def route(self, route):
        url = route.request.url
        self.seen.append(url)
        if url.startswith(self.allowed):
            route.continue_()
        else:
            self.refused.append(url)
            route.abort()

    def request(self, request):
        if request.url not in self.seen:
            self.seen.append(request.url)
        if not request.url.startswith(self.allowed):
            self.refused.append(request.url)


@pytest.fixture
def open_page(browser):
    """``open_page(url, allowed)`` -> a new page, guarded; checked for stray requests and
    script errors when the test ends."""
    opened = []

    def opener(url, allowed=("file://",), clock=False):
        pg = browser.new_page()
        guard = Guard(allowed)
        errors = []
        pg.route("**/*", guard.route)
        pg.on("request", guard.request)
        pg.on("pageerror", lambda e: errors.append(str(e)))
        if clock:
            pg.clock.install()
        pg.goto(url)
        pg.wait_for_selector("html[data-ready]")
        opened.append((pg, guard, errors))
        return pg

    yield opener
    for pg, guard, errors in opened:
        pg.close()
        assert not guard.refused, f"the page asked the network for {guard.refused}"
        assert all(u.startswith(guard.allowed) for u in guard.seen), guard.seen
        assert not errors, errors


def _write(tmp_path, spec, name="page.html"):
    path = tmp_path / name
    page.write(spec, path, ints=True)
    return path.as_uri()


def _keys(pg, selector):
    return pg.eval_on_selector_all(
        selector, "nodes => nodes.map(n => n.getAttribute('data-key').split(' ')[0])")


def _panel(view, index):
    return f"#view-{view} .panels > figure:nth-child({index + 1})"


def _highlighted(pg, selector, kind):
    return {int(k[1:]) for k in _keys(pg, selector + " .cell.hl[data-key]") if k[0] == kind}


def _check_output_cell(pg, spec, incidence, xi, co):
    """Point at dL/dx cell xi; the scatter and gather views and the product list must show
    exactly the (g cell, tap) pairs of the engine's incidence."""
    n_out = math.prod(spec.output_size)
    cell = pg.locator(f'{_panel("scatter", 3)} .cell[data-key~="x{xi}"]')
    cell.hover()
    pairs = incidence.get(xi, set())
    shown = {(a, b) for a, b in pairs if a // n_out == co}
    assert _highlighted(pg, _panel("scatter", 0), "g") == {a for a, _ in shown}
    assert _highlighted(pg, _panel("scatter", 1), "w") == {b for _, b in shown}
    assert _highlighted(pg, _panel("gather", 0), "g") == {a for a, _ in shown}
    assert _highlighted(pg, _panel("gather", 1), "w") == {b for _, b in shown}
    # the window of the flipped kernel covers prod(kernel) cells of the stretched gradient
    window = pg.locator(f"{_panel('gather', 0)} .cell.win").count()
    assert window == math.prod(spec.kernel_size)
    # every product, over every g channel, is listed
    listed = pg.eval_on_selector_all(
        "#inspector-body .terms li",
        "nodes => nodes.map(n => [+n.dataset.g, +n.dataset.w])")
    assert sorted(map(tuple, listed)) == sorted(pairs)
    assert pg.locator(f'{_panel("scatter", 3)} .cell.src[data-key~="x{xi}"]').count() == 1


def test_file_page_highlights_the_engine_incidence(open_page, tmp_path):
    spec = SPECS["experiment"]
    pg = open_page(_write(tmp_path, spec))
    incidence = _scatter_incidence(spec, spec.padding)
    for xi in range(math.prod(spec.input_size)):
        _check_output_cell(pg, spec, incidence, xi, 0)
    # the matrix C^T: the entries of the hovered x cell's row
    pg.locator(f'{_panel("scatter", 3)} .cell[data-key~="x5"]').hover()
    assert set(_keys(pg, "#matrix .cell.hl")) == {f"m{a}_5" for a, _ in incidence[5]}
    # hovering a matrix entry lights its g cell, x cell and tap
    a, b = sorted(incidence[5])[0]
    pg.locator(f'#matrix .cell[data-key="m{a}_5"]').hover()
    assert _highlighted(pg, _panel("scatter", 1), "w") == {b}
    assert _highlighted(pg, _panel("scatter", 0), "g") == {a}
    assert pg.locator(f'{_panel("scatter", 3)} .cell.hl[data-key~="x5"]').count() == 1


def test_grouped_spec_with_the_channel_picker(open_page, tmp_path):
    spec = SPECS["2d-groups"]           # 4 -> 4 channels, 2 groups, asymmetric padding
    pg = open_page(_write(tmp_path, spec))
    incidence = _scatter_incidence(spec, spec.padding)
    n_in = math.prod(spec.input_size)
    pg.select_option("#pick-ci", "3")
    assert pg.eval_on_selector_all("#pick-co option", "o => o.map(n => n.value)") == ["2", "3"]
    pg.select_option("#pick-co", "3")
    assert "g channel 3, x channel 3" in pg.inner_text(f"{_panel('scatter', 1)} figcaption")
    for q in (0, 7, n_in - 1):
        _check_output_cell(pg, spec, incidence, 3 * n_in + q, 3)


def test_one_dimensional_dilated_spec(open_page, tmp_path):
    spec = SPECS["1d-asymmetric-dilated"]
    pg = open_page(_write(tmp_path, spec))
    incidence = _scatter_incidence(spec, spec.padding)
    for xi in range(math.prod(spec.input_size)):
        _check_output_cell(pg, spec, incidence, xi, 0)


def test_steps_slider_play_and_keyboard(open_page, tmp_path):
    pg = open_page(_write(tmp_path, SPECS["experiment"]), clock=True)
    visible = lambda: pg.eval_on_selector_all(  # noqa: E731
        ".step", "s => s.filter(n => !n.hidden).map(n => n.id)")
    assert visible() == ["step-forward"]
    slider = pg.locator("#step-slider")
    slider.focus()
    pg.keyboard.press("ArrowRight")
    pg.keyboard.press("ArrowRight")
    assert visible() == ["step-scatter"]
    pg.keyboard.press("End")
    assert visible() == ["step-matrix"] and pg.locator("#next").is_disabled()
    slider.fill("7")
    assert visible() == ["step-convolution"]
    pg.click("#play")
    assert pg.get_attribute("#play", "aria-pressed") == "true"
    pg.clock.run_for(4100)
    assert visible() == ["step-phases"]
    pg.click("#play")
    assert pg.get_attribute("#play", "aria-pressed") == "false"
    pg.clock.run_for(9000)
    assert visible() == ["step-phases"]
    # cells: Tab reaches a panel, arrow keys move, the focus is visible and highlights
    first = pg.locator(f'{_panel("scatter", 3)} .cell[data-key~="x0"]')
    first.focus()
    pg.keyboard.press("ArrowRight")
    pg.keyboard.press("ArrowDown")
    focused = pg.evaluate("document.activeElement.getAttribute('data-key')")
    assert focused.split()[0] == "x5"
    style = pg.evaluate("(() => { const s = getComputedStyle(document.activeElement); "
                        "return [s.outlineStyle, parseFloat(s.outlineWidth)]; })()")
    assert style[0] == "solid" and style[1] >= 2
    assert pg.locator(f'{_panel("scatter", 3)} .cell.src[data-key~="x5"]').count() == 1
    assert "dL/dx[0, 0, 1, 1]" in pg.inner_text("#inspector-body")
    pg.keyboard.press("Tab")       # the next panel (the gather view's stretched gradient)
    assert pg.evaluate("document.activeElement.closest('figure').dataset.ref") == "6:0"


def test_geometry_only_forward_view_and_print(open_page, tmp_path):
    spec = SPECS["experiment"]
    pg = open_page(_write(tmp_path, spec))
    pg.check('input[name="show"][value="geometry"]')
    assert pg.eval_on_selector(".cell .num", "n => getComputedStyle(n).visibility") == "hidden"
    pg.check('input[name="direction"][value="forward"]')
    assert pg.locator("#view-forward").is_visible() and not pg.locator("#view-scatter").is_visible()
    # an output cell of the forward convolution: its window on the padded input, every tap
    incidence = _scatter_incidence(spec, spec.padding)
    reads = {xi for xi, pairs in incidence.items() if any(a == 3 for a, _ in pairs)}
    pg.locator(f'{_panel("forward", 2)} .cell[data-key~="g3"]').hover()
    assert _highlighted(pg, _panel("forward", 0), "x") == reads
    assert _highlighted(pg, _panel("forward", 1), "w") == set(range(9))
    text = pg.inner_text("#inspector-body")
    assert "o[0, 0, 1, 1] = sum of x \u00b7 w" in text and " = " not in text.split("\n", 1)[1]
    assert pg.locator("#inspector-body .terms li").count() == 9
    assert "C[" not in text and pg.inner_text("#matrix-title") == "The matrix C: o = C x"
    pg.emulate_media(media="print")
    assert pg.locator(".step:visible").count() == len(page.page_data(spec)["steps"])
    assert not pg.locator(".controls").is_visible() and not pg.locator("#inspector").is_visible()
    pg.emulate_media(media="screen")


@pytest.fixture
def server():
    with serving() as srv:
        yield srv


def test_playground_redraws_from_the_server(open_page, server):
    host, port = server.server_address[:2]
    origin = f"http://{host}:{port}/"
    pg = open_page(origin, allowed=(origin,))
    assert pg.locator("#playground").is_visible()
    assert pg.input_value("#f-kernel") == "3" and pg.input_value("#f-padding") == "1"
    # a new spec: 1-d, asymmetric padding, dilation
    pg.select_option("#f-dims", "1")
    pg.fill("#f-size", "9")
    pg.fill("#f-stride", "3")
    pg.fill("#f-padding", "2:0")
    pg.fill("#f-dilation", "2")
    with pg.expect_response(lambda r: "/api/page?" in r.url and r.status == 200):
        pg.click("#redraw")
    expect(pg.locator("#spec-line")).to_contain_text("(1, 1, 9)")
    spec = SPECS["1d-asymmetric-dilated"]
    incidence = _scatter_incidence(spec, spec.padding)
    for xi in (0, 4, 8):
        _check_output_cell(pg, spec, incidence, xi, 0)
    assert "dims=1" in pg.url and "padding=2%3A0" in pg.url
    # an invalid spec: tconv's message next to the field, the drawing kept
    pg.fill("#f-kernel", "9")
    with pg.expect_response(lambda r: "/api/page?" in r.url and r.status == 400):
        pg.click("#redraw")
    expect(pg.locator("#err-kernel")).not_to_be_empty()
    message = pg.inner_text("#err-kernel")
    assert "kernel size 9 (dilated extent 17) is larger than the padded input 9+2+0=11" in message
    assert "Traceback" not in pg.content()
    assert pg.get_attribute("#f-kernel", "aria-invalid") == "true"
    assert "(1, 1, 9)" in pg.inner_text("#spec-line")
    # a reload with the query keeps the spec
    pg.fill("#f-kernel", "3")
    with pg.expect_response(lambda r: "/api/page?" in r.url and r.status == 200):
        pg.click("#redraw")
    pg.reload()
    expect(pg.locator("#spec-line")).to_contain_text("(1, 1, 9)")
    assert pg.input_value("#f-padding") == "2:0"


def test_a_click_after_typing_asks_once_and_keeps_the_pointed_cell(open_page, server):
    """Typing in a field then clicking Redraw fires the field's change (a redraw 250 ms later)
    and the click: the page asks the server once, and a cell pointed at after the drawing stays
    highlighted once the change's redraw would have come."""
    host, port = server.server_address[:2]
    origin = f"http://{host}:{port}/"
    pg = open_page(origin, allowed=(origin,))
    asked = []
    pg.on("request", lambda r: asked.append(r.url) if "/api/page?" in r.url else None)
    pg.fill("#f-stride", "3")
    with pg.expect_response(lambda r: "/api/page?" in r.url and r.status == 200):
        pg.click("#redraw")
    expect(pg.locator("#spec-line")).to_contain_text("stride (3, 3)")
    pg.locator(f'{_panel("scatter", 3)} .cell[data-key~="x0"]').hover()
    pg.wait_for_timeout(600)
    assert len(asked) == 1, asked
    assert pg.locator(f'{_panel("scatter", 3)} .cell.src[data-key~="x0"]').count() == 1


def test_screenshots_at_three_widths(open_page, tmp_path):
    """The page fits 360 px without a horizontal scrollbar and fills a 4K screen. With
    $TCONV_SCREENSHOTS set, the 360 and 1280 px shots are kept there as small palette PNGs
    (``make figures`` writes them to docs/figures)."""
    url = _write(tmp_path, SPECS["experiment"])
    keep = os.environ.get("TCONV_SCREENSHOTS")
    for width in WIDTHS:
        pg = open_page(url)
        pg.set_viewport_size({"width": width, "height": 2160 if width > 2000 else 900})
        overflow = pg.evaluate("document.documentElement.scrollWidth - window.innerWidth")
        assert overflow <= 0, f"{width} px: the page scrolls sideways by {overflow} px"
        pg.evaluate("window.scrollTo(0, document.getElementById('views').offsetTop)")
        target = pg.locator(f'{_panel("gather", 2)} .cell[data-key~="x9"]')
        target.hover()
        assert pg.locator(f'{_panel("gather", 2)} .cell.src[data-key~="x9"]').count() == 1
        size = pg.eval_on_selector(f'{_panel("scatter", 3)} .cell', "n => n.offsetWidth")
        assert size >= 24, f"{width} px: cells of {size} px are too small to point at"
        shot = tmp_path / f"page-{width}.png"
        pg.screenshot(path=str(shot))
        assert shot.stat().st_size > 10_000
        if keep and width < 2000:
            from PIL import Image

            Path(keep).mkdir(parents=True, exist_ok=True)
            Image.open(shot).convert("RGB").quantize(64).save(Path(keep) / shot.name,
                                                              optimize=True)


def test_sample_data_is_what_the_page_shows(open_page, tmp_path):
    """The x panel of step 1 shows sample 0 of tconv explain's data, cell by cell."""
    spec = ConvSpec.forward((2, 1, 3, 3), (1, 1, 2, 2))
    pg = open_page(_write(tmp_path, spec))
    x, _ = sample_data(spec, ints=True)
    shown = pg.eval_on_selector_all('#step-forward figure:nth-child(1) .cell',
                                    "n => n.map(c => +c.textContent)")
    assert shown == x[0, 0].ravel().tolist()
    assert "sample 0 of 2" in pg.inner_text("#spec-line")
