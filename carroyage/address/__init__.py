"""The address check: normalise, geocode (BAN index, addok client), lookup, check, batch, server.

This wing stands beside the delimitation engine and never imports it: it reads zones from files
(the official QPV layer, or a geography written by ``carroyage delimit``).
"""
