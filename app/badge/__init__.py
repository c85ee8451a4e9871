"""The public badge of a stall (亮照亮证, 诚信承诺, 共产党员经营户, complaints): its one home.

- compute.py: the badge as a pure function of its records and the time (with changes_at).
- facts.py:   the small interface features publish the badge's records through; the badge
              never imports a feature nor reads their tables itself.
- records.py: one stall's records, gathered from the registered facts.
- cache.py:   invalidation (writers call `invalidate_*` in their transaction), the per-worker
              cache keyed by version, Redis, and the response headers (ETag, Cache-Control).
- fastpath.py: the WSGI fast path for warm reads, installed by create_app.
- page.py:    the H5 page `/s/<token>`; the JSON route is in miniprogram_api/stalls.py."""
