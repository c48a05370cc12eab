"""Screenshots of a reports folder in headless Chromium: how students and instructors see them.

    python tests/screenshots.py REPORTS [OUT] [--width 1200] [--height 2400]

writes OUT/class.png and OUT/<student>.png for every student report (OUT defaults to
REPORTS/screenshots). Needs the Debian package ``chromium``. test_browser.py uses the
same function to check the reports in a real browser.
"""
from __future__ import annotations

import argparse
import shutil
import subprocess
import tempfile
from pathlib import Path

CANDIDATES = ("chromium", "chromium-browser", "google-chrome", "chrome")


def browser() -> str | None:
    return next((path for name in CANDIDATES if (path := shutil.which(name))), None)


def screenshot(page: Path, png: Path, width: int = 1200, height: int = 2400) -> Path:
    """``page`` rendered at ``width`` x ``height`` CSS pixels into ``png``."""
    exe = browser()
    if exe is None:
        raise RuntimeError("no Chromium: apt-get install -y chromium")
    with tempfile.TemporaryDirectory() as profile:  # a fresh profile: nothing of a user's own
        proc = subprocess.run(
            [exe, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", "--no-first-run",
             f"--user-data-dir={profile}", "--force-device-scale-factor=1",
             f"--window-size={width},{height}", f"--screenshot={png}", Path(page).resolve().as_uri()],
            capture_output=True, text=True, timeout=120)
    if proc.returncode != 0 or not png.is_file():
        raise RuntimeError(f"chromium failed on {page}: {proc.stderr[-2000:]}")
    return png


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("reports", type=Path)
    parser.add_argument("out", type=Path, nargs="?")
    parser.add_argument("--width", type=int, default=1200)
    parser.add_argument("--height", type=int, default=2400)
    args = parser.parse_args()
    out = args.out or args.reports / "screenshots"
    out.mkdir(parents=True, exist_ok=True)
    pages = [(args.reports / "class.html", "class")]
    pages += [(p, p.parent.name) for p in sorted(args.reports.glob("**/report.html"))]
    for page, name in pages:
        if page.is_file():
            print(screenshot(page, out / f"{name}.png", args.width, args.height))


if __name__ == "__main__":
    main()
