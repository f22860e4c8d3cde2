"""`python -m itinerabot` is the `itinerabot` command."""

from itinerabot.cli import main

raise SystemExit(main())
