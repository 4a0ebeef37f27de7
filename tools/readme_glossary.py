"""Write klloss.glossary into README.md between its glossary markers (tests check it is current)."""

import re
from pathlib import Path

import klloss

README = Path(__file__).resolve().parents[1] / "README.md"
PATTERN = re.compile(r"(<!-- glossary:[^\n]*-->\n).*?(<!-- /glossary -->)", re.S)


def render(text):
    return PATTERN.sub(lambda m: m[1] + klloss.glossary.as_markdown() + "\n" + m[2], text)


if __name__ == "__main__":
    README.write_text(render(README.read_text(encoding="utf-8")), encoding="utf-8")
