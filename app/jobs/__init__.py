"""Background jobs: long work (sticker sheets, exports, imports) never runs inside a request.

A feature declares a job kind next to its code (`app/<feature>/jobs.py`, `@job_kind`); a request
submits a job (a row in `jobs`, the one source of truth every API host reads) and answers 202;
the client polls GET /api/v1/jobs/<id> and downloads the result once it is there.

Where the work runs: with REDIS_URL, on RQ workers (`flask jobs worker`, deploy/systemd/
xgz-worker@.service), RQ carrying only the job id; without Redis (the embedded default), in a
small pool of threads of the web process (app/jobs/embedded.py). The same runner
(app/jobs/runner.py) runs a job either way."""
