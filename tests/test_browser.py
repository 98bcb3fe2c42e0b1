"""Reports in a real browser: no console errors, nothing leaves the machine, images render,
links resolve, and a <script> planted in a category value is shown as text."""

from __future__ import annotations

import shutil
from pathlib import Path

import pandas as pd
import pytest
import yaml

from tests.conftest import run_cli

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
playwright = pytest.importorskip("playwright.sync_api")
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="needs Debian's chromium package (.ci/run installs it)")
PLANTED = "<script>window.__pwned = 1</script>"


@pytest.fixture(scope="module")
def report(scenario, tmp_path_factory) -> Path:
    """A full report on the control incident with a <script> planted as a country value."""
    src = scenario("control").parent
    folder = tmp_path_factory.mktemp("browser") / "incident"
    shutil.copytree(src, folder)
    spec = yaml.safe_load((folder / "incident.yaml").read_text())
    prod_path = folder / spec["production"]
    prod = pd.read_csv(prod_path) if prod_path.suffix == ".csv" else pd.read_parquet(prod_path)
    country = spec["columns"]["segments"][0]
    prod[country] = prod[country].astype(str)
    prod.loc[prod.index[:200], country] = PLANTED
    prod.to_csv(prod_path, index=False) if prod_path.suffix == ".csv" else prod.to_parquet(prod_path)
    out = folder.parent / "reports"
    proc = run_cli("run", folder / "incident.yaml", "--out", out, "--single-file")
    assert proc.returncode in (0, 1), proc.stderr
    return next(p for p in out.iterdir() if p.is_dir())


@pytest.fixture(scope="module")
def browser():
    with playwright.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=[
            "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
            "--disable-background-networking", "--disable-component-update", "--disable-sync"])
        yield b
        b.close()


def _visit(browser, url: str) -> dict:
    page = browser.new_page()
    errors, remote = [], []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(str(e)))

    def route(r):
        if r.request.url.startswith(("file:", "data:", "about:")):
            r.continue_()
        else:
            remote.append(r.request.url)
            r.abort()

    page.route("**/*", route)
    page.goto(url)
    page.wait_for_load_state("load")
    images = page.eval_on_selector_all("img", "els => els.map(e => [e.complete, e.naturalWidth])")
    links = page.eval_on_selector_all("a[href]", "els => els.map(e => e.getAttribute('href'))")
    anchors = set(page.eval_on_selector_all("[id]", "els => els.map(e => e.id)"))
    text = page.inner_text("body")
    pwned = page.evaluate("() => window.__pwned === undefined ? null : window.__pwned")
    page.close()
    return {"errors": errors, "remote": remote, "images": images, "links": links, "anchors": anchors,
            "text": text, "pwned": pwned}


def test_every_page_is_clean_offline_and_linked(report, browser):
    """Each page: no console error, no request leaves the machine, every image renders, links resolve."""
    pages = sorted(report.glob("*.html"))
    assert (report / "index.html") in pages and len(pages) >= 3
    seen_planted = False
    for html in pages:
        res = _visit(browser, html.as_uri())
        assert res["errors"] == [], (html.name, res["errors"])
        assert res["remote"] == [], (html.name, res["remote"])
        assert all(ok and width > 0 for ok, width in res["images"]), html.name
        assert res["pwned"] is None, html.name
        seen_planted |= PLANTED in res["text"]
        for href in res["links"]:
            target, _, anchor = href.partition("#")
            if target:
                assert not target.startswith(("http:", "https:", "//")), (html.name, href)
                assert (report / target).exists(), (html.name, href)
            elif anchor:
                assert anchor in res["anchors"], (html.name, href)
    assert seen_planted, "the planted category value should be visible as text on some page"


def test_single_file_holds_every_page(report, browser):
    single = report / f"{report.name}.html"
    assert single.exists()
    res = _visit(browser, single.as_uri())
    assert res["errors"] == [] and res["remote"] == [] and res["pwned"] is None
    for check_page in report.glob("*.html"):
        if check_page.name not in ("index.html", single.name):
            assert "page-" + check_page.stem in res["anchors"]
