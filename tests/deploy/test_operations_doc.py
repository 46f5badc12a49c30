"""docs/operations.md names every setting the code reads (its configuration reference)."""
from pathlib import Path

from domain.kernel.settings import Settings

ROOT = Path(__file__).resolve().parents[2]


def test_every_setting_is_in_the_configuration_reference():
    text = (ROOT / "docs" / "operations.md").read_text()
    missing = [name.upper() for name in Settings.model_fields if f"`{name.upper()}`" not in text]
    assert not missing, f"add to the configuration reference of docs/operations.md: {', '.join(missing)}"
