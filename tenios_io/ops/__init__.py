"""Operating the archive: the ledger's numbers for people and for Prometheus
(:mod:`~tenios_io.ops.monitoring`, :mod:`~tenios_io.ops.metrics`) and what an operator
applies to a Prefect server once (:mod:`~tenios_io.ops.prefect_setup`)."""
