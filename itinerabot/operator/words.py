"""How the operator's text names money, providers and the command to type next."""

from __future__ import annotations

from itinerabot.models import PaymentMethod


def money_text(amount: object, currency: str) -> str:
    return f"{amount} {currency}"


def provider_name(method_or_source: PaymentMethod | str) -> str:
    """Stripe for card payments and Stripe's events ("stripe", "stripe-return"), Telegram for
    Stars payments and Telegram's reports ("telegram"), else Circle."""
    name = str(method_or_source)
    if name.startswith(("card", "stripe")):
        return "Stripe"
    if name.startswith(("stars", "telegram")):
        return "Telegram"
    return "Circle"


def refund_command(reference: str, extra_payment_id: int | None, method: PaymentMethod) -> str:
    """The command that refunds (or retries the refund of) one payment of an order."""
    target = f"--extra {extra_payment_id}" if extra_payment_id is not None else "--payment"
    command = f"itinerabot orders refund {reference} {target}"
    if method == PaymentMethod.USDC:
        command += " --address ADDRESS --chain CHAIN"
    return command
