"""``python -m otel_audit`` runs the CLI."""

from otel_audit.cli import main

raise SystemExit(main())
