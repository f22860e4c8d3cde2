"""The payment methods (card, USDC) and the one fulfilment they share. No module here imports a
channel adapter: messages for the traveller go through `itinerabot.messages`."""
