"""Telegram Stars: invoices in the chat, the pre-checkout answer, the payment, the refund."""
