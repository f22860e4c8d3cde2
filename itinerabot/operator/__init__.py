"""The operator's commands (`itinerabot orders …`): what needs attention, one order's
history, sending a PDF again and refunding a payment, on the store a running `serve` uses.
"""
