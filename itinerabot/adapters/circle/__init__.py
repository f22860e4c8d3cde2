"""The Circle adapter: USDC payment intents over Circle's v1 API, and Amazon SNS-delivered
webhooks. `status` parses Circle's JSON (pure), `budget` paces requests, `client` talks HTTP,
`sns` verifies webhook messages; `errors` holds Circle's and SNS's exceptions, placed in the
project's one tree (drawn in `itinerabot.errors`). What the USDC payments do with all this
lives in `itinerabot.payments.usdc`.
"""
