"""tests/conftest.require_data: skip without ../shared/data, fail with ASA_REQUIRE_DATA=1."""

import pytest

from tests import conftest


def test_missing_data_skips_by_default(tmp_path, monkeypatch):
  monkeypatch.delenv("ASA_REQUIRE_DATA", raising=False)
  missing = str(tmp_path / "no_such_data")
  with pytest.raises(pytest.skip.Exception, match="no_such_data"):
    conftest.require_data(missing, "MAST data")


@pytest.mark.parametrize("value", ["1", "yes"])
def test_missing_data_fails_when_required(tmp_path, monkeypatch, value):
  monkeypatch.setenv("ASA_REQUIRE_DATA", value)
  with pytest.raises(pytest.fail.Exception,
                     match="ASA_REQUIRE_DATA is set but MAST data not found.*no_such"):
    conftest.require_data(str(tmp_path / "no_such_data"), "MAST data")


def test_present_data_passes_through_and_zero_means_not_required(tmp_path, monkeypatch):
  monkeypatch.setenv("ASA_REQUIRE_DATA", "1")
  assert conftest.require_data(str(tmp_path)) == str(tmp_path)
  monkeypatch.setenv("ASA_REQUIRE_DATA", "0")
  with pytest.raises(pytest.skip.Exception):
    conftest.require_data(str(tmp_path / "absent"))
