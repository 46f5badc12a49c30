from __future__ import annotations

import pytest

from tests.integrations.asst.fake_asst import FakeAsst


@pytest.fixture
def fake_asst():
    fake = FakeAsst().start()
    yield fake
    fake.stop()


@pytest.fixture
def asst_settings(monkeypatch, fake_asst):
    """The service configured to send to the fake ASST: short timeout, three attempts, 10 s base back-off."""
    from domain.kernel.settings import get_settings

    for k, v in {"ASST_FHIR_BASE_URL": fake_asst.url, "ASST_FHIR_TIMEOUT_SECONDS": "1",
                 "OUTBOX_MAX_ATTEMPTS": "3", "OUTBOX_BACKOFF_BASE_SECONDS": "10"}.items():
        monkeypatch.setenv(k, v)
    get_settings.cache_clear()
    yield get_settings()
    monkeypatch.undo()
    get_settings.cache_clear()
