"""Lambda entry points: parse the event, call the domain code, shape the answer."""
