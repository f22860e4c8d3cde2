"""Card payments through Stripe Checkout: sessions, the signed webhook, the deep-link return."""
