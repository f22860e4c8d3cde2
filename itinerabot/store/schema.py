"""Versioned schema migrations. `PRAGMA user_version` holds how many have been applied.

Append a migration to add a change; never edit one that has shipped.
"""

from __future__ import annotations

MIGRATIONS: tuple[str, ...] = (
    # 1: everything the first release needs
    """
    CREATE TABLE kv (
        key   TEXT PRIMARY KEY,
        value TEXT NOT NULL
    );
    -- dialogue state of each private chat, as JSON written by the dialogue module
    CREATE TABLE chats (
        chat_id    INTEGER PRIMARY KEY,
        state      TEXT NOT NULL,
        updated_at TEXT NOT NULL
    );
    CREATE TABLE orders (
        id                  INTEGER PRIMARY KEY,
        reference           TEXT NOT NULL UNIQUE,
        chat_id             INTEGER NOT NULL,
        itinerary           TEXT NOT NULL,
        price               TEXT NOT NULL,
        currency            TEXT NOT NULL,
        status              TEXT NOT NULL,
        created_at          TEXT NOT NULL,
        paid_at             TEXT,
        delivered_at        TEXT,
        document_message_id INTEGER,
        delivery_error      TEXT
    );
    CREATE INDEX orders_by_chat ON orders (chat_id, id);
    CREATE INDEX orders_by_status ON orders (status);
    -- one confirmed payment per order: the UNIQUE is what makes fulfilment idempotent
    CREATE TABLE payments (
        order_id            INTEGER PRIMARY KEY REFERENCES orders (id),
        method              TEXT NOT NULL,
        amount              TEXT NOT NULL,
        currency            TEXT NOT NULL,
        provider_ref        TEXT NOT NULL,
        provider_payment_id TEXT,
        tx_hash             TEXT,
        paid_at             TEXT NOT NULL,
        source              TEXT NOT NULL
    );
    -- Stripe Checkout: one row per order and attempt, written before the API call
    CREATE TABLE stripe_sessions (
        order_id        INTEGER NOT NULL REFERENCES orders (id),
        attempt         INTEGER NOT NULL,
        idempotency_key TEXT NOT NULL UNIQUE,
        params          TEXT NOT NULL,
        session_id      TEXT UNIQUE,
        url             TEXT,
        status          TEXT NOT NULL,
        created_at      TEXT NOT NULL,
        PRIMARY KEY (order_id, attempt)
    );
    -- Circle payment intents: one row per order and attempt, written before the API call
    CREATE TABLE circle_intents (
        order_id          INTEGER NOT NULL REFERENCES orders (id),
        attempt           INTEGER NOT NULL,
        idempotency_key   TEXT NOT NULL UNIQUE,
        intent_id         TEXT UNIQUE,
        status            TEXT NOT NULL,
        deadline_epoch    REAL,
        address           TEXT,
        chain             TEXT,
        expires_on        TEXT,
        notified_paid     TEXT,
        created_at        TEXT NOT NULL,
        PRIMARY KEY (order_id, attempt)
    );
    CREATE INDEX circle_intents_by_status ON circle_intents (status);
    -- webhook events already taken (Stripe event ids, SNS MessageIds)
    CREATE TABLE webhook_events (
        source      TEXT NOT NULL,
        event_id    TEXT NOT NULL,
        received_at TEXT NOT NULL,
        PRIMARY KEY (source, event_id)
    );
    -- everything the bot will send to Telegram, written in the same transaction as its cause
    CREATE TABLE outbox (
        id         INTEGER PRIMARY KEY,
        chat_id    INTEGER NOT NULL,
        kind       TEXT NOT NULL,
        payload    TEXT NOT NULL,
        order_id   INTEGER,
        status     TEXT NOT NULL DEFAULT 'pending',
        attempts   INTEGER NOT NULL DEFAULT 0,
        message_id INTEGER,
        error      TEXT,
        created_at TEXT NOT NULL,
        sent_at    TEXT
    );
    CREATE INDEX outbox_pending ON outbox (status, chat_id, id);
    """,
    # 2: the money promise: delivery bookkeeping, lookups by index, anomalies, extra
    # payments and refunds
    """
    -- a send whose outcome is unknown (timeout after the upload, crash mid-send) is repeated
    -- at most once: `in_flight` is set before each send, `unknown_outcomes` counts them
    ALTER TABLE outbox ADD COLUMN in_flight INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE outbox ADD COLUMN unknown_outcomes INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE outbox ADD COLUMN first_failed_at TEXT;
    CREATE INDEX outbox_by_chat ON outbox (chat_id, id);
    CREATE INDEX outbox_removed_buttons ON outbox (chat_id, json_extract(payload, '$.message_id'))
        WHERE kind = 'remove_buttons';
    CREATE INDEX outbox_sent ON outbox (sent_at) WHERE status = 'sent';
    CREATE INDEX outbox_by_order ON outbox (order_id) WHERE order_id IS NOT NULL;
    CREATE INDEX webhook_events_by_time ON webhook_events (received_at);
    -- genuine provider events that pay nothing (a foreign session, a wrong amount, …):
    -- shown to the operator by `itinerabot orders`, never fulfilled
    CREATE TABLE anomalies (
        id           INTEGER PRIMARY KEY,
        source       TEXT NOT NULL,
        provider_ref TEXT NOT NULL,
        order_id     INTEGER REFERENCES orders (id),
        reason       TEXT NOT NULL,
        detail       TEXT NOT NULL,
        created_at   TEXT NOT NULL,
        resolved_at  TEXT,
        UNIQUE (source, provider_ref, reason)
    );
    -- money that arrived but did not pay its order: a partial payment of an intent that
    -- ended, a second payment of an order already paid, or what was paid above the price.
    -- Each is owed back.
    CREATE TABLE extra_payments (
        id                  INTEGER PRIMARY KEY,
        order_id            INTEGER NOT NULL REFERENCES orders (id),
        method              TEXT NOT NULL,
        kind                TEXT NOT NULL,
        amount              TEXT NOT NULL,
        currency            TEXT NOT NULL,
        provider_ref        TEXT NOT NULL,
        provider_payment_id TEXT,
        created_at          TEXT NOT NULL,
        UNIQUE (method, provider_ref, kind)
    );
    -- refunds asked of Stripe or Circle (the idempotency key is stored before the call)
    CREATE TABLE refunds (
        id                 INTEGER PRIMARY KEY,
        order_id           INTEGER NOT NULL REFERENCES orders (id),
        extra_payment_id   INTEGER REFERENCES extra_payments (id),
        method             TEXT NOT NULL,
        provider_ref       TEXT NOT NULL,
        amount             TEXT NOT NULL,
        currency           TEXT NOT NULL,
        idempotency_key    TEXT NOT NULL UNIQUE,
        status             TEXT NOT NULL,
        provider_refund_id TEXT,
        error              TEXT,
        created_at         TEXT NOT NULL,
        updated_at         TEXT NOT NULL
    );
    CREATE INDEX refunds_by_order ON refunds (order_id);
    -- one refund under way per extra payment, whoever asks (the bot or the operator)
    CREATE UNIQUE INDEX refunds_one_open_per_extra ON refunds (extra_payment_id)
        WHERE extra_payment_id IS NOT NULL AND status IN ('requested', 'pending');
    CREATE INDEX extra_payments_by_order ON extra_payments (order_id);
    CREATE INDEX anomalies_by_order ON anomalies (order_id);
    """,
    # 3: the language each chat reads the bot in
    """
    -- `seen`: the language code of the traveller's Telegram app, as last seen;
    -- `chosen`: the language they picked with /language (wins over `seen`)
    CREATE TABLE chat_languages (
        chat_id     INTEGER PRIMARY KEY,
        seen        TEXT,
        chosen      TEXT,
        updated_at  TEXT NOT NULL
    );
    """,
    # 4: updates handled out of order (chats are handled concurrently)
    """
    -- ids of updates handled at or above the stored offset: the offset is the lowest update
    -- not yet committed, so updates above it may be done already; a restart skips these
    CREATE TABLE handled_updates (
        update_id INTEGER PRIMARY KEY
    );
    """,
    # 5: payment requests, carried out after the update that asked for them commits
    """
    -- a tap on "Pay" (or a return from Checkout) asks a provider, which may be slow: the tap's
    -- update commits this row at once, a service carries it out and marks it done in the
    -- transaction that queues its answer; a restart carries out the rows still open
    CREATE TABLE payment_requests (
        id           INTEGER PRIMARY KEY,
        chat_id      INTEGER NOT NULL,
        action       TEXT NOT NULL,
        argument     TEXT NOT NULL,
        requested_at TEXT NOT NULL,
        done_at      TEXT
    );
    CREATE INDEX payment_requests_open ON payment_requests (id) WHERE done_at IS NULL;
    """,
    # 6: Telegram Stars
    """
    -- an invoice sent for an order: its payload (the order's reference and the attempt) names
    -- it in the pre-checkout query and in the payment; `amount` is what it asks, in whole Stars
    CREATE TABLE star_invoices (
        id         INTEGER PRIMARY KEY,
        order_id   INTEGER NOT NULL REFERENCES orders (id),
        payload    TEXT NOT NULL UNIQUE,
        amount     INTEGER NOT NULL,
        created_at TEXT NOT NULL
    );
    CREATE INDEX star_invoices_by_order ON star_invoices (order_id);
    -- every Stars payment Telegram reported, once per charge, whatever it paid: who paid
    -- (refundStarPayment needs the user) and what; `order_id` is NULL for an unknown payload
    CREATE TABLE star_payments (
        charge_id          TEXT PRIMARY KEY,
        provider_charge_id TEXT,
        payer_id           INTEGER NOT NULL,
        chat_id            INTEGER NOT NULL,
        payload            TEXT NOT NULL,
        currency           TEXT NOT NULL,
        amount             INTEGER NOT NULL,
        order_id           INTEGER REFERENCES orders (id),
        received_at        TEXT NOT NULL
    );
    """,
    # 7: several travellers on one itinerary
    """
    -- how many units the order's total `price` is made of: its travellers when the shop prices
    -- per traveller (Stripe's line item quantity), else 1
    ALTER TABLE orders ADD COLUMN quantity INTEGER NOT NULL DEFAULT 1
        CHECK (quantity BETWEEN 1 AND 9);
    """,
)
