"""``python -m simfunnel``: the command line."""

from simfunnel.cli import main

raise SystemExit(main())
