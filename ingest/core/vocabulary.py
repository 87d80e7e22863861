"""The published vocabulary: element list, table names, flag codes and figure kinds.

Each of these is a fact the service publishes (column names, FLAG values,
DataLink figure files), so it is stated once here and every module imports
it.  rd.xml cannot import Python: ``tests/test_vocabulary.py`` checks that its
tables, abundance columns and DataLink figure list equal the ones below.
"""
from __future__ import annotations

# The twelve elements with an [X/Fe] abundance (LAMOST MRS CNN catalogue; Fu et al. 2022).
ELEMENTS = ("c", "n", "o", "mg", "al", "si", "s", "ca", "ti", "cr", "ni", "cu")
XFE = tuple(f"{element}_fe" for element in ELEMENTS)
# Every abundance the catalogue publishes per star and per cluster, in column order.
ABUNDANCES = ("fe_h", "m_h", "alpha_m") + XFE

# The published tables, in foreign-key order (the order of rd.xml and of publication).
TABLES = ("cluster", "member", "spectrum", "gradient", "lit_comparison", "lit_summary",
          "binary_candidate")

# member.flag (Fu et al. 2022): not used for the cluster RV, RV member, RV member whose
# stellar parameters passed quality control (used for the abundances).
FLAG_NOT_USED, FLAG_RV_MEMBER, FLAG_RELIABLE = 0, 1, 12
MEMBER_FLAGS = (FLAG_NOT_USED, FLAG_RV_MEMBER, FLAG_RELIABLE)

# cluster.rv_flag: outcome of the Gaussian fit to the FLAG=1 RVs, with the thesis's
# text for the paper tables (-1: no FLAG=1 star, NULL in the service).
RV_FLAG_OK, RV_FLAG_FAILED, RV_FLAG_FEW, RV_FLAG_SINGLE, RV_FLAG_REJECTED = 0, 1, 2, 3, 4
RV_FLAG_NONE = -1
RV_FLAG_TEXT = {RV_FLAG_OK: "fit_ok", RV_FLAG_FAILED: "fit_failed", RV_FLAG_FEW: "few_stars",
                RV_FLAG_SINGLE: "single_star", RV_FLAG_REJECTED: "not_gaussian", RV_FLAG_NONE: ""}

# Per-cluster preview figures: file <stem>_<kind>.png, linked by DataLink with this text.
CLUSTER_FIGURES = (
    ("cmd", "colour-magnitude diagram of the members, coloured by RV and [Fe/H]"),
    ("kiel", "Kiel diagram (Teff, log g) of the members, coloured by [Fe/H]"),
    ("rv", "RV distribution with the Gaussian fit and the FLAG=1 window"),
)
