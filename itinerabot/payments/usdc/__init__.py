"""USDC payments through Circle payment intents: creation, the per-intent pollers, the late
watcher, the webhook, what is recorded of each observation, and USDC refunds."""
