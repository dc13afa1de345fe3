"""Retake the README's two pictures of the rendered book (run after the notebooks are re-executed):

    python docs/screenshots.py              # builds the site (README's command), then takes both pictures
    python docs/screenshots.py --no-build   # pictures of the site already in docs/_build/html

Taken with the browser suite's harness (Playwright driving the system Chromium, tests/browser/book.py): the page is
opened from disk, MathJax finishes, the page is scrolled to the section and a 1200x760 viewport is saved as
docs/site_nb03.png (a derivation of notebook 03) and docs/site_nb05.png (notebook 05's training curves). The README
test allows at most 300 kB per picture.
"""
import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.browser.book import build_site, screenshot  # noqa: E402
from tests.browser.harness import chromium_executable  # noqa: E402

SITE = ROOT / "docs" / "_build" / "html"
PAGES = "_generated/notebooks"
SHOTS = [  # (picture, page, element, text it contains)
    ("site_nb03.png", "03_bn_fusion_proofs.html", "h2", "Conv followed by BatchNorm is one conv"),
    ("site_nb05.png", "05_train_cifar10.html", ".cell", "plot_history(history)"),
]
MAX_BYTES = 300_000


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--no-build", action="store_true", help="use the site already in docs/_build/html")
    args = parser.parse_args()
    if not args.no_build:
        code, log, seconds = build_site(SITE)
        if code:
            print(log[:4000], file=sys.stderr)
            return code
        print(f"site built in {seconds:.1f} s: {SITE}")
    executable = chromium_executable()
    if executable is None:
        print("no Chromium: apt-get install -y chromium (or set REPGHOST_MINI_CHROMIUM)", file=sys.stderr)
        return 1
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=executable, args=["--no-sandbox"], headless=True)
        try:
            for name, page, selector, text in SHOTS:
                out = screenshot(browser, SITE / PAGES / page, ROOT / "docs" / name, selector, text)
                size = out.stat().st_size
                print(f"{out.relative_to(ROOT)}: {size / 1000:.0f} kB" + ("  TOO LARGE for the README test"
                                                                        if size > MAX_BYTES else ""))
        finally:
            browser.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
