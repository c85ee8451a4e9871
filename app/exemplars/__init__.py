"""典型选树（示范）: model stalls (示范摊位, 党员示范户) and model markets (示范市场).

- criteria.py:   a region's criteria (defaults when none set; the nearest region up the tree wins).
- queries.py:    candidates computed in SQL, set-based, per criteria group; the badge fact
                 `exemplar` (the stall's title in force and what its criteria need at `now`).
- services.py:   set criteria, confer for a year (refused with the failing criteria), withdraw.
- market_page.py: the public market page /m/<token> (stalls, verdicts from the stored badge
                 projection, titles), its per-worker cache and WSGI fast path.

The stall's title is shown on its public badge through app.badge (compute.py evaluates the
criteria against the badge's own records at every moment, so an expiry or an upheld complaint
switches it off exactly when the badge changes)."""
