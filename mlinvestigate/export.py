"""One self-contained HTML file holding every page of a report, for mail or a wiki.

Each page's ``<main>`` becomes a ``<section>``; links between pages become links between sections;
styles are kept once. Nothing is fetched: pages are already self-contained (embedded images,
no scripts), and the content is moved as parsed HTML, so escaped values stay escaped.
"""

from __future__ import annotations

from pathlib import Path

from .contract import registered
from .errors import InvestigationError


def _anchor(page: str) -> str:
    return "page-" + page.removesuffix(".html")


def single_file(folder: str | Path, dest: str | Path | None = None) -> Path:
    """Write ``<folder>/<folder name>.html`` (or ``dest``) holding every page; never overwrites."""
    from bs4 import BeautifulSoup

    folder = Path(folder)
    if not (folder / "index.html").exists():
        raise InvestigationError(f"{folder} is not a report folder (no index.html); "
                                 "pass the folder that `mlinvestigate run` printed.")
    contracts = registered()
    pages = ["index.html"] + [f"{c}.html" for c in contracts if (folder / f"{c}.html").exists()]
    names = set(pages)
    styles: list[str] = []
    sections = []
    title = folder.name
    header = None
    for page in pages:
        soup = BeautifulSoup((folder / page).read_text(encoding="utf-8"), "html.parser")
        if page == "index.html":
            title = soup.title.get_text() if soup.title else title
            header = soup.find(class_="mli-header")
        for style in soup.find_all("style"):
            if style.string and style.string not in styles:
                styles.append(style.string)
        for a in soup.find_all("a", href=True):
            target = a["href"].split("#")[0]
            if target in names:
                a["href"] = "#" + _anchor(target)
        main = soup.find("main") or soup.body
        label = "Summary" if page == "index.html" else contracts[page.removesuffix(".html")].title
        for nav in main.find_all(class_=["mli-header", "mli-nav"]):
            nav.decompose()
        sections.append((page, label, main.decode_contents()))
    out = BeautifulSoup("<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'></head><body></body></html>",
                        "html.parser")
    head = out.head
    csp = out.new_tag("meta")
    csp["http-equiv"] = "Content-Security-Policy"
    csp["content"] = "default-src 'none'; img-src data:; style-src 'unsafe-inline'; script-src 'none'"
    head.append(csp)
    t = out.new_tag("title")
    t.string = title
    head.append(t)
    for css in styles:
        tag = out.new_tag("style")
        tag.string = css
        head.append(tag)
    body = out.body
    body["class"] = "jp-Notebook"
    if header is not None:
        body.append(header)
    nav = out.new_tag("nav", attrs={"class": "mli-nav"})
    for page, label, _ in sections:
        a = out.new_tag("a", href="#" + _anchor(page))
        a.string = label
        nav.append(a)
    body.append(nav)
    for page, _, inner in sections:
        section = out.new_tag("section", id=_anchor(page))
        section.append(BeautifulSoup(f"<main>{inner}</main>", "html.parser"))
        body.append(section)
        body.append(out.new_tag("hr"))
    dest = Path(dest) if dest else folder / f"{folder.name}.html"
    stem, i = dest.with_suffix(""), 2
    while dest.exists():
        dest = Path(f"{stem}-{i}.html")
        i += 1
    dest.write_text(str(out), encoding="utf-8")
    return dest
