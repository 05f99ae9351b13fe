"""`make bench`: the session store measured against SQLite's own limit."""
