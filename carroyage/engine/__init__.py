"""The delimitation engine: grid ids, readers, rules, the income estimator, clusters, delimitation.

Data flow one way: :mod:`.grid` → :mod:`.readers` → :mod:`.income` and :mod:`.rules` →
:mod:`.clusters` → :mod:`.delimit` (and :mod:`.sensitivity`, which re-runs the rule).
"""
