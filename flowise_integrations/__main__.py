"""``python -m flowise_integrations``: the same as the ``flowise-integrations`` command."""

from .cli import main

raise SystemExit(main())
