"""What pyproject.toml cannot say statically, made from its one repository URL (``[tool.flink-vvp] repository``).

- The project URLs: Source, Documentation, Changelog and Issue tracker, each under the repository.
- The package index's README: README.md with its relative links made absolute into the repository (images
  by their raw file, the README's own ``#anchors`` on the repository page), since the index resolves none.
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

HERE = Path(__file__).parent
REPOSITORY: str = tomllib.loads((HERE / "pyproject.toml").read_text(encoding="utf-8"))["tool"]["flink-vvp"][
    "repository"
]
BRANCH = "main"

PROJECT_URLS = {
    "Source": REPOSITORY,
    "Documentation": f"{REPOSITORY}/tree/{BRANCH}/docs",
    "Changelog": f"{REPOSITORY}/blob/{BRANCH}/CHANGELOG.md",
    "Issue tracker": f"{REPOSITORY}/issues",
}

#: A Markdown link or image: ``[text](target)`` or ``![alt](target)``.
_LINK = re.compile(r"(?P<image>!?)\[(?P<text>[^\]]*)\]\((?P<target>[^)\s]+)\)")


def absolute_links(markdown: str) -> str:
    """Point a README's relative links into the repository; absolute URLs are left alone."""

    def absolute(match: re.Match[str]) -> str:
        target = match["target"]
        if re.match(r"[a-z][a-z0-9+.-]*:", target, re.IGNORECASE):
            return match[0]
        if target.startswith("#"):
            url = f"{REPOSITORY}{target}"
        else:
            kind = "raw" if match["image"] else "blob"
            url = f"{REPOSITORY}/{kind}/{BRANCH}/{target.removeprefix('./')}"
        return f"{match['image']}[{match['text']}]({url})"

    return _LINK.sub(absolute, markdown)


if __name__ == "__main__":
    from setuptools import setup  # only where the build backend runs this file: the tests import it without

    setup(
        project_urls=PROJECT_URLS,
        long_description=absolute_links((HERE / "README.md").read_text(encoding="utf-8")),
        long_description_content_type="text/markdown",
    )
