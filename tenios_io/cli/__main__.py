"""`python -m tenios_io.cli` = `tenios-archive`."""

from tenios_io.cli import main

main()
