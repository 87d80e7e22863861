<resource schema="ocvo" resdir="ocvo">
  <!-- The TAP examples of the ocvo service (DALI examples, reStructuredText
  with tapquery directives).  They are fed into the ex service of q.rd
  (/ocvo/q/ex/examples) and, through the userconfig.rd that `ocvo publish`
  writes for the instance, into the site's TAP service (/tap/examples),
  where TOPCAT's TAP window lists them under "Examples".  They live in an
  RD of their own because q.rd refers to the TAP service, and the TAP
  service must not load q.rd while it is itself being loaded. -->
  <STREAM id="tapexamples">
    <meta name="_example" title="Radial metallicity gradient sample">
      Fu et al. (2022) and the thesis fit [Fe/H] against Galactocentric
      radius using only clusters with at least three FLAG=12 members
      (reliable RVs and stellar parameters) between 5 and 18 kpc; the
      fits themselves are in :taptable:`ocvo.gradient`.

      .. tapquery::

        SELECT cluster_name, r_gc, z, fe_h, fe_h_err, n_flag12, logage50
        FROM ocvo.cluster
        WHERE n_flag12 &gt;= 3 AND r_gc BETWEEN 5 AND 18
        ORDER BY r_gc
    </meta>

    <meta name="_example" title="Clusters with newly measured radial velocities">
      Clusters whose LAMOST RV rests on at least one FLAG=1 member but that
      none of the literature catalogues in :taptable:`ocvo.lit_comparison`
      gives an RV for: new measurements.

      .. tapquery::

        SELECT c.cluster_name, c.rv, c.rv_err, c.n_flag1
        FROM ocvo.cluster AS c
        LEFT OUTER JOIN (SELECT DISTINCT cluster_name FROM ocvo.lit_comparison
          WHERE quantity = 'rv') AS l ON l.cluster_name = c.cluster_name
        WHERE c.n_flag1 &gt; 0 AND l.cluster_name IS NULL
        ORDER BY n_flag1 DESC
    </meta>

    <meta name="_example" title="FLAG=12 members of one cluster">
      The members that enter a cluster's abundances (FLAG=12), with their
      combined RVs and [Fe/H], here for the cluster with the most of them;
      put a cluster name in the inner query for another one.

      .. tapquery::

        SELECT m.source_id, m.ra, m.dec, m.gmag, m.bp_rp, m.rv, m.rv_err,
          m.teff, m.logg, m.fe_h, m.fe_h_err
        FROM ocvo.member AS m
        JOIN (SELECT TOP 1 cluster_name FROM ocvo.cluster ORDER BY n_flag12 DESC) AS c
          ON m.cluster_name = c.cluster_name
        WHERE m.flag = 12
    </meta>

    <meta name="_example" title="Crossmatch your own star list">
      Upload a table with columns ra and dec (TOPCAT: TAP window, "Table
      upload"; pyvo: ``uploads={"mine": table}``) and find members within
      2 arcsec; ADQL 2.1's IN_UNIT gives the separation in arcsec, with
      that unit declared in the result (a bare ``* 3600`` would keep
      DISTANCE's deg).

      .. tapquery::

        SELECT u.*, m.member_key, m.cluster_name, m.rv, m.fe_h, m.flag,
          IN_UNIT(DISTANCE(POINT('ICRS', u.ra, u.dec),
                           POINT('ICRS', m.ra, m.dec)), 'arcsec') AS sep_arcsec
        FROM TAP_UPLOAD.mine AS u
        JOIN ocvo.member AS m
          ON 1 = CONTAINS(POINT('ICRS', m.ra, m.dec),
                       CIRCLE('ICRS', u.ra, u.dec, 2.0/3600.0))
    </meta>

    <meta name="_example" title="Kiel diagram of good members">
      Teff and log g of the FLAG=12 members, coloured by [Fe/H] in TOPCAT
      (Fu et al. 2022, Fig. 4).

      .. tapquery::

        SELECT cluster_name, teff, logg, fe_h
        FROM ocvo.member
        WHERE flag = 12 AND teff IS NOT NULL AND logg IS NOT NULL
    </meta>

    <meta name="_example" title="Radial-velocity variable stars">
      Members whose repeat LAMOST RVs scatter beyond their errors: binary
      candidates, excluded from nothing but worth a look.

      .. tapquery::

        SELECT source_id, cluster_name, rv, rv_std, rv_nobs, rv_chi2
        FROM ocvo.member
        WHERE rv_var_flag = 1
        ORDER BY rv_chi2 DESC
    </meta>

    <meta name="_example" title="The [Fe/H] gradient fits">
      Linear and broken-line fits of [Fe/H] against R_gc and the height
      above the plane, overall
      and per age bin (thesis Tables 4-5 to 4-7).

      .. tapquery::

        SELECT quantity, variable, model, age_bin, slope, slope_err,
          slope_outer, slope_outer_err, knee, knee_err, n, sample
        FROM ocvo.gradient
        WHERE quantity = 'fe_h'
        ORDER BY variable, age_bin, model
    </meta>

    <meta name="_example" title="Comparison with literature catalogues">
      Mean and standard deviation of the differences (literature minus
      this catalogue) per catalogue and quantity (thesis Tables 4-1, 4-3,
      4-4); the per-cluster differences are in :taptable:`ocvo.lit_comparison`.

      .. tapquery::

        SELECT catalogue, quantity, mean_diff, mean_diff_err, std_diff, n
        FROM ocvo.lit_summary
        ORDER BY quantity, catalogue
    </meta>

    <meta name="_example" title="Binary-cluster candidates">
      Cluster pairs close in 3D position, proper motion and RV (thesis ch.
      5), with the RVs and ages of both partners.

      .. tapquery::

        SELECT b.cluster_a, b.cluster_b, b.sep_3d, b.dv_tan, b.drv,
          a.rv AS rv_a, c.rv AS rv_b, a.logage50 AS logage_a,
          c.logage50 AS logage_b
        FROM ocvo.binary_candidate AS b
        JOIN ocvo.cluster AS a ON a.cluster_name = b.cluster_a
        JOIN ocvo.cluster AS c ON c.cluster_name = b.cluster_b
        ORDER BY sep_3d
    </meta>

    <meta name="_example" title="Spectra behind a star">
      The individual LAMOST spectra, with match and quality control, of the
      member with the most repeat RV measurements.

      .. tapquery::

        SELECT s.obsid, s.epoch, s.survey, s.snr, s.rv, s.rv_err, s.qc,
          s.match_method, s.match_sep
        FROM ocvo.spectrum AS s
        JOIN (SELECT TOP 1 source_id FROM ocvo.member ORDER BY rv_nobs DESC) AS m
          ON s.source_id = m.source_id
        ORDER BY epoch
    </meta>
  </STREAM>
</resource>
