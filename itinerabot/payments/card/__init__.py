"""Card payments through Stripe Checkout: sessions, the signed webhook, the deep-link return,
the one check that a session pays its order (`verify`), and card refunds."""
