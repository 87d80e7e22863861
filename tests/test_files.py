"""replace_directory: the one atomic directory swap of the ingest, the simulator and publish."""
from __future__ import annotations

import pytest

from ingest.core.files import replace_directory


def _directory(path, **files):
    path.mkdir()
    for name, text in files.items():
        (path / name).write_text(text)
    return path


def test_new_directory_takes_the_place_of_the_old_one(tmp_path):
    target = _directory(tmp_path / "out", old="1")
    replace_directory(_directory(tmp_path / "staging", new="2"), target)
    assert sorted(p.name for p in target.iterdir()) == ["new"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]   # nothing parked is left


def test_missing_target_is_created(tmp_path):
    replace_directory(_directory(tmp_path / "staging", new="2"), tmp_path / "out")
    assert (tmp_path / "out" / "new").read_text() == "2"


def test_failed_swap_puts_the_old_directory_back(tmp_path):
    target = _directory(tmp_path / "out", old="1")
    with pytest.raises(OSError):
        replace_directory(tmp_path / "no-such-staging", target)
    assert (target / "old").read_text() == "1"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


def test_fixed_parking_and_files_taken_from_the_old_directory(tmp_path):
    target = _directory(tmp_path / "data", drawn_meanwhile="x", stale="y")
    parking = tmp_path / "data.old"
    seen = []

    def keep(parked):
        seen.append(parked)
        (parked / "drawn_meanwhile").rename(target / "drawn_meanwhile")

    replace_directory(_directory(tmp_path / "staging", new="2"), target, parking=parking,
                      before_removal=keep)
    assert seen == [parking]
    assert sorted(p.name for p in target.iterdir()) == ["drawn_meanwhile", "new"]
    assert not parking.exists()


def test_tangential_velocity_constant_agrees_with_astropy():
    from astropy import units as u

    from ingest.core.constants import KMS_PER_MASYR_KPC

    one = (1 * u.mas / u.yr * u.kpc).to(u.km / u.s, u.dimensionless_angles()).value
    assert KMS_PER_MASYR_KPC == pytest.approx(one, abs=1e-9)
