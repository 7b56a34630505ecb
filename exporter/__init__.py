"""devin-exporter: a Prometheus exporter for Devin's metrics APIs."""

import sys

__version__ = "0.1.0"

# structlog's console renderer imports rich and better_exceptions whenever they are
# installed (a development environment has rich through twine), at 3 MB and a tenth of a
# second of start-up; the exporter logs logfmt or JSON and needs neither. Marking them
# absent before the first import of structlog keeps them out; a process that has imported
# one already keeps it.
for _extra in ("rich", "better_exceptions"):
    sys.modules.setdefault(_extra, None)  # type: ignore[arg-type]
