"""One archival run, from claim to summary.

- :mod:`~tenios_io.run.session`: a run from start to summary, whoever starts it (the
  CLI or a Prefect flow): sweep, the loop, the checkpoint.
- :mod:`~tenios_io.run.pipeline`: the wiring from settings (ledger, store, sources,
  archiver); :mod:`~tenios_io.run.clients` lends a process's live pipeline to its tasks.
- :mod:`~tenios_io.run.loop`: the sliding window over claimed batches and the summary.
- :mod:`~tenios_io.run.archiver`: one claimed recording, fetch → spool → verified upload → ledger.
- :mod:`~tenios_io.run.stop` and :mod:`~tenios_io.run.interrupt`: a run that cannot
  work stops as a whole; Ctrl-C and SIGTERM finish or give back.
- :mod:`~tenios_io.run.lease`, :mod:`~tenios_io.run.retry`,
  :mod:`~tenios_io.run.ratelimit`: keeping claims, deciding retries, pacing the API.
- :mod:`~tenios_io.progress`, :mod:`~tenios_io.run.progress_poll`: what a run
  reports as it goes; :mod:`~tenios_io.run.fanout`: a run over several workers.

Nothing here imports :mod:`tenios_io.audit` (a test holds the run path to that).
"""
