"""Sources a user can read: every work the presets and the code cite is in docs/sources.md.

Citations are keys: capitals and a two-digit year (`LG23`, `FERRO24`), or one of the named
secondary sources (`aihwkit`, `notes`, ...). Number formats that look like keys (`FP16`, `BF16`)
are not citations. No file may point at the working notes the presets were first written from
(`aimc-facts`, `training-facts`, `systems-facts`, `seeds/`), which are not in the repository.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SOURCES = ROOT / "docs" / "sources.md"
CITING = sorted(
    p
    for pattern in (
        "models/**/*.toml",
        "sweeps/*.toml",
        "archsim/**/*.py",
        "tests/*.py",
        "benchmarks/*.py",
    )
    for p in ROOT.glob(pattern)
    if p.name != "test_sources.py"  # names the old documents it forbids
)
KEY = re.compile(r"\b[A-Z]{2,7}\d{2}\b")
NUMBER_FORMAT = re.compile(r"^(FP|BF|INT|UINT|FLOAT)\d+$")


def _defined() -> set[str]:
    """Keys with an entry: the `### KEY` headings of docs/sources.md."""
    return set(re.findall(r"^### (\S+)$", SOURCES.read_text(), flags=re.MULTILINE))


def test_the_citing_files_are_found():
    names = {p.name for p in CITING}
    assert {"hermes.toml", "cmo-hfox.toml", "chip.py"} <= names


@pytest.mark.parametrize("path", CITING, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_cited_key_has_an_entry(path):
    text = path.read_text()
    cited = {k for k in KEY.findall(text) if not NUMBER_FORMAT.match(k)}
    missing = sorted(cited - _defined())
    assert not missing, f"{path.name} cites {missing}, not in docs/sources.md"
    for old in ("aimc-facts", "training-facts", "systems-facts", "seeds/0"):
        assert old not in text, f"{path.name} cites {old!r}, a document not in the repository"


def test_the_main_keys_and_secondary_sources_have_entries():
    """The keys the HERMES presets rest on, and every "via ..." source, are explained."""
    assert {"LG23", "KA22", "AM23", "WAN22", "FAL25", "aihwkit", "notes", "fig1-desc"} <= _defined()
    text = SOURCES.read_text()
    for key in _defined():
        entry = text.split(f"### {key}\n", 1)[1].split("\n#", 1)[0]
        assert "Taken" in entry or "Used" in entry, f"{key}: no word on what was taken from it"


def test_readme_links_the_sources():
    assert "docs/sources.md" in (ROOT / "README.md").read_text()
