"""Crossmatch against injected truth and against a brute-force reference built with astropy."""
from __future__ import annotations

import numpy as np
import pandas as pd
from astropy import units as u
from astropy.coordinates import SkyCoord

from ingest.core.config import Crossmatch
from ingest.pipeline.s2_crossmatch import match

GAIA_EPOCH = 2016.0
# The crossmatch settings these tests assume (3.5" radius, DR3 epoch 2016.0), stated here
# so that a change of defaults.toml does not silently change what they test.
XM = Crossmatch(radius_arcsec=3.5, gaia_epoch=GAIA_EPOCH, gaia_epoch_dr2=2015.5, id_fallback=False)


def members_frame(ra, dec, pmra=None, pmdec=None, source_id=None, index=None) -> pd.DataFrame:
    n = len(ra)
    return pd.DataFrame({
        "ra": np.asarray(ra, float), "dec": np.asarray(dec, float),
        "pmra": np.zeros(n) if pmra is None else np.asarray(pmra, float),
        "pmdec": np.zeros(n) if pmdec is None else np.asarray(pmdec, float),
        "source_id": pd.array([None] * n if source_id is None else source_id, dtype="Int64"),
    }, index=index)


def spectra_frame(ra, dec, epoch, source_id=None, index=None) -> pd.DataFrame:
    n = len(ra)
    return pd.DataFrame({
        "ra": np.asarray(ra, float), "dec": np.asarray(dec, float),
        "epoch": np.asarray(epoch, float),
        "source_id": pd.array([None] * n if source_id is None else source_id, dtype="Int64"),
    }, index=index)


def tangent_plane_position(ra, dec, pmra, pmdec, years):
    """Reference propagation (small-angle, in the local tangent plane)."""
    dec_new = dec + pmdec * years / 3.6e6
    ra_new = ra + pmra * years / 3.6e6 / np.cos(np.radians(dec))
    return ra_new, dec_new


def astropy_sep(ra1, dec1, ra2, dec2) -> np.ndarray:
    first, second = SkyCoord(ra1 * u.deg, dec1 * u.deg), SkyCoord(ra2 * u.deg, dec2 * u.deg)
    return first.separation(second).arcsec


def test_propagated_match_found_where_unpropagated_misses():
    rng = np.random.default_rng(3)
    n = 200
    ra, dec = rng.uniform(0, 360, n), rng.uniform(-80, 80, n)
    pm_total = rng.uniform(1200, 2000, n)
    angle = rng.uniform(0, 2 * np.pi, n)
    pmra, pmdec = pm_total * np.sin(angle), pm_total * np.cos(angle)
    epoch = rng.uniform(2011.5, 2012.0, n)
    true_ra, true_dec = tangent_plane_position(ra, dec, pmra, pmdec, epoch - GAIA_EPOCH)
    offset = rng.uniform(0, 1.0, n) / 3600.0
    spec_ra, spec_dec = true_ra + offset / np.cos(np.radians(true_dec)), true_dec
    members = members_frame(ra, dec, pmra, pmdec)
    spectra = spectra_frame(spec_ra, spec_dec, epoch)

    pairs = match(members, spectra, XM, "DR3")
    assert pairs["spec_index"].tolist() == list(range(n))
    assert pairs["member_index"].tolist() == list(range(n))
    assert (pairs["match_method"] == "position").all()
    expected_sep = astropy_sep(true_ra, true_dec, spec_ra, spec_dec)
    np.testing.assert_allclose(pairs["match_sep"], expected_sep, atol=0.01)
    assert (astropy_sep(ra, dec, spec_ra, spec_dec) > 3.5).all()
    unpropagated = match(members, spectra_frame(spec_ra, spec_dec, np.full(n, np.nan)), XM, "DR3")
    assert len(unpropagated) == 0


def test_all_candidates_in_radius_are_kept():
    centre_ra, centre_dec = 83.8, -5.4
    seps = np.array([0.2, 0.9, 1.5, 2.0, 2.5, 2.9, 3.2, 3.4, 3.6, 5.0])
    angles = np.linspace(0, 2 * np.pi, len(seps), endpoint=False)
    ra = centre_ra + seps * np.sin(angles) / 3600 / np.cos(np.radians(centre_dec))
    dec = centre_dec + seps * np.cos(angles) / 3600
    members = members_frame(ra, dec, index=np.arange(100, 100 + len(seps)))
    spectra = spectra_frame([centre_ra], [centre_dec], [2018.0], index=[7])
    pairs = match(members, spectra, XM, "DR3")
    reference = astropy_sep(ra, dec, np.full(len(ra), centre_ra), np.full(len(ra), centre_dec))
    inside = np.flatnonzero(reference <= 3.5)
    assert len(inside) == 8
    assert pairs["member_index"].tolist() == (100 + inside).tolist()
    assert set(pairs["spec_index"]) == {7}
    np.testing.assert_allclose(pairs["match_sep"], reference[inside], atol=1e-6)


def test_source_id_match_takes_precedence_and_non_members_stay_unmatched():
    members = members_frame([10.0, 10.0 + 1 / 3600], [20.0, 20.0], source_id=[1, 2])
    spectra = spectra_frame(
        [50.0, 10.0, 10.0], [-30.0, 20.0, 20.0], [2015.0] * 3,
        source_id=[2, 999, None], index=["far_but_id", "non_member_id", "no_id"])
    pairs = match(members, spectra, XM, "DR3").set_index("spec_index")
    assert "non_member_id" not in pairs.index
    assert pairs.loc["far_but_id", "member_index"] == 1
    assert pairs.loc["far_but_id", "match_method"] == "source_id"
    assert pairs.loc["far_but_id", "match_sep"] == 0.0
    no_id = pairs.loc[["no_id"]]
    assert no_id["member_index"].tolist() == [0, 1]
    assert (no_id["match_method"] == "position").all()


def test_fast_mover_does_not_hide_slow_matches():
    members = members_frame([100.0, 200.0], [0.0, 45.0], pmra=[0.0, 10_000.0], pmdec=[0.0, 0.0])
    years = 2010.0 - GAIA_EPOCH
    fast_ra, fast_dec = tangent_plane_position(200.0, 45.0, 10_000.0, 0.0, years)
    spectra = spectra_frame([100.0 + 1 / 3600, fast_ra], [0.0, fast_dec], [2010.0, 2010.0])
    pairs = match(members, spectra, XM, "DR3")
    assert pairs["member_index"].tolist() == [0, 1]
    assert pairs["match_sep"].iloc[1] < 0.05


def test_random_field_equals_brute_force_reference():
    rng = np.random.default_rng(11)
    n_members, n_spectra = 3000, 4000
    centres = rng.uniform([0, -60], [360, 60], size=(20, 2))
    pick = rng.integers(0, 20, n_members)
    dec = centres[pick, 1] + rng.normal(0, 10 / 3600, n_members)
    ra = centres[pick, 0] + rng.normal(0, 10 / 3600, n_members) / np.cos(np.radians(dec))
    pmra, pmdec = rng.normal(0, 100, n_members), rng.normal(0, 100, n_members)
    host = rng.integers(0, n_members, n_spectra)
    spec_dec = dec[host] + rng.normal(0, 3 / 3600, n_spectra)
    spec_ra = ra[host] + rng.normal(0, 3 / 3600, n_spectra) / np.cos(np.radians(spec_dec))
    epoch = rng.uniform(2011, 2021, n_spectra)
    pairs = match(members_frame(ra, dec, pmra, pmdec), spectra_frame(spec_ra, spec_dec, epoch),
                  XM, "DR3")

    cos_sep = (SkyCoord(spec_ra * u.deg, spec_dec * u.deg).cartesian.xyz.value.T
               @ SkyCoord(ra * u.deg, dec * u.deg).cartesian.xyz.value)
    s_c, m_c = np.nonzero(cos_sep > np.cos(np.radians(60 / 3600)))
    moved_ra, moved_dec = tangent_plane_position(ra[m_c], dec[m_c], pmra[m_c], pmdec[m_c],
                                                 epoch[s_c] - GAIA_EPOCH)
    sep = astropy_sep(spec_ra[s_c], spec_dec[s_c], moved_ra, moved_dec)
    clear = np.abs(sep - 3.5) > 1e-3
    expected = {(s, m) for s, m, d in zip(s_c[clear], m_c[clear], sep[clear]) if d <= 3.5}
    found = set(zip(pairs["spec_index"], pairs["member_index"]))
    ambiguous = set(zip(s_c[~clear], m_c[~clear]))
    assert found - ambiguous == expected
    assert max(len(g) for _, g in pairs.groupby("spec_index")) > 4   # crowded path exercised
