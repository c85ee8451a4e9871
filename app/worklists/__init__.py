"""Worklists: what the people who run the programme go through every day, across features:
the markets they cover with their counts, review queues (claims, credentials), an
organisation's members. Lists only; every decision stays with its feature's services. Nothing
imports this package but the HTTP layer."""
