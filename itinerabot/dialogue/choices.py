"""The traveller's choices between questions: one more traveller or none, and after the last
flight a connecting flight, the next leg or done; also removing a traveller or a flight.

Each changes the draft's shape and moves on to whatever needs asking next.
"""

from __future__ import annotations

from itinerabot.dialogue import texts
from itinerabot.dialogue.draft import Draft, FlightDraft
from itinerabot.dialogue.summary import advance
from itinerabot.dialogue.turn import Turn


def add_traveller(turn: Turn) -> None:
    """Ask the name of one more traveller (the caller checks there is room)."""
    turn.draft.passengers.append(None)
    advance(turn)


def no_more_travellers(turn: Turn) -> None:
    """Go on to the flights."""
    turn.draft.passengers_done = True
    advance(turn, [texts.ack_travellers(turn.t, len(turn.draft.passengers))])


def add_flight(turn: Turn, *, connection: bool) -> None:
    """Ask for one more flight after the last (the caller checks there is room): a connection
    departs from where the last flight lands, the next leg from anywhere."""
    draft = turn.draft
    last = draft.flights[-1]
    added = FlightDraft(connection=connection)
    if connection:
        added.origin = last.destination
    draft.flights.append(added)
    draft.flights_done = False
    advance(turn)


def no_more_flights(turn: Turn) -> None:
    """The journey is complete: show the summary."""
    turn.draft.flights_done = True
    advance(turn)


def remove_passenger(turn: Turn, index: int) -> None:
    """Take the traveller at `index` off the itinerary (never the only one)."""
    draft = turn.draft
    name = draft.passengers.pop(index) or ""
    advance(turn, [texts.passenger_removed(turn.t, name)])


def remove_flight(turn: Turn, index: int, label: str) -> None:
    """Take the flight at `index` off the itinerary (never the only one). The flight after it
    stays a connection only if it still departs from where the flight before it lands."""
    draft = turn.draft
    draft.flights.pop(index)
    reconnect(draft)
    advance(turn, [texts.flight_removed(turn.t, label)])


def make_next_leg(turn: Turn, index: int) -> None:
    """The flight at `index` starts a new leg instead of connecting (a stop over 24 h)."""
    turn.draft.flights[index].connection = False
    advance(turn)


def reconnect(draft: Draft) -> None:
    """A flight is a connection only after another flight, from the airport that one lands at."""
    for index, flight in enumerate(draft.flights):
        before = draft.flights[index - 1] if index else None
        if flight.connection and (before is None or before.destination != flight.origin):
            flight.connection = False
