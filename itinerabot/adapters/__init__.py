"""Adapters of the outside services: the Telegram channel, Stripe and Circle. Each converts its
library's or API's errors into the project's tree (`itinerabot.errors`)."""
