"""The webhook server: a small ASGI app served by hypercorn's trio worker."""
