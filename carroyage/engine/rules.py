"""Frozen, named rule versions with every parameter visible.

The income threshold follows décret n°2014-767, art. 4 (docs/facts.md, "The rule")::

    S = fraction × (w × national median + (1 − w) × agglomeration median), rounded UP to 100 €
    w = 0.7 for an unité urbaine under 5 million inhabitants, 0.3 from 5 million on

and a quartier qualifies when it is continuous, holds at least ``min_population`` residents and its
median income is below S, i.e. more than ``low_income_share`` of its residents are below S.

``decree-2014`` draws each quartier's contour one cell beyond its candidate cells (art. 3: contours
follow streets, so they take in the bordering blocks; ``contour_ring_cells``) and links cells by
edge or corner (queen). Both are structural choices of the method calibrated in issue #11
(``docs/method.md`` §3, :data:`carroyage.engine.income.CALIBRATION`), not fitted values.
"""

from __future__ import annotations

import math
import shlex
from dataclasses import asdict, dataclass, fields, replace
from typing import Any

from ..errors import RuleError
from ..labels import EXPECTED_RANGES, VALUE_EXPECTED, one_of
from ..settings import MAX_GAP_FILL_CELLS

CONTIGUITIES = ("rook", "queen")


@dataclass(frozen=True)
class Threshold:
    """How the income threshold of one run was computed (all in the grid's income concept)."""

    national_median: float | None
    agglomeration_median: float
    agglomeration_population: float
    national_weight: float
    reference_median: float
    fraction: float
    unrounded: float
    value: float


@dataclass(frozen=True)
class Rule:
    """A named version of the priority-geography rule.

    Parameters
    ----------
    name : str
        Version name, recorded in every output.
    description : str
        Where the version comes from.
    threshold_fraction : float
        Share of the reference median that makes the threshold (0.6).
    national_weight : float
        Weight of the national median in the reference median (0.7 in the decree, 0 for ``seed``).
    large_agglomeration_population : int
        Unité urbaine population from which ``large_agglomeration_national_weight`` applies.
    large_agglomeration_national_weight : float
        National weight for the largest unités urbaines (0.3 in the decree).
    round_up_to : int
        The threshold is rounded up to a multiple of this many euros (0: no rounding).
    low_income_share : float
        A quartier (or candidate cell) qualifies when strictly more than this share of its
        residents are below the threshold.
    min_population : int
        Minimum residents of a quartier (1,000).
    contiguity : {"rook", "queen"}
        Cells sharing an edge (rook) or also a corner (queen) belong to one quartier.
    contour_ring_cells : int
        Steps of contour ring drawn around each cluster (0: none). Each step offers the inhabited
        cells next to the cluster, most low-income first, and takes them while the whole quartier
        keeps more than ``low_income_share`` of its residents below the threshold; the
        ``min_population`` test then counts the quartier with its ring
        (:func:`carroyage.engine.clusters.contour_ring`).
    gap_fill_cells : int
        Holes of at most this many cells enclosed by a candidate cluster join it (0: none).
    min_agglomeration_population : int
        Unités urbaines smaller than this hold no quartier (10,000).
    """

    name: str
    description: str
    threshold_fraction: float = 0.6
    national_weight: float = 0.7
    large_agglomeration_population: int = 5_000_000
    large_agglomeration_national_weight: float = 0.3
    round_up_to: int = 100
    low_income_share: float = 0.5
    min_population: int = 1000
    contiguity: str = "rook"
    gap_fill_cells: int = 4
    contour_ring_cells: int = 0
    min_agglomeration_population: int = 10_000

    def __post_init__(self) -> None:
        share = EXPECTED_RANGES["strictly_between"].format(low=0, high=1)
        weight = EXPECTED_RANGES["between"].format(low=0, high=1)
        at_least_zero = VALUE_EXPECTED["greater_than_equal"].format(ge=0)
        checks = [
            (0 < self.threshold_fraction < 1, "threshold_fraction", self.threshold_fraction, share),
            (0 <= self.national_weight <= 1, "national_weight", self.national_weight, weight),
            (
                0 <= self.large_agglomeration_national_weight <= 1,
                "large_agglomeration_national_weight",
                self.large_agglomeration_national_weight,
                weight,
            ),
            (0 < self.low_income_share < 1, "low_income_share", self.low_income_share, share),
            (self.min_population >= 0, "min_population", self.min_population, at_least_zero),
            (self.round_up_to >= 0, "round_up_to", self.round_up_to, at_least_zero),
            (
                0 <= self.gap_fill_cells <= MAX_GAP_FILL_CELLS,
                "gap_fill_cells (--gap-fill)",
                self.gap_fill_cells,
                EXPECTED_RANGES["between"].format(low=0, high=MAX_GAP_FILL_CELLS),
            ),
            (self.contour_ring_cells >= 0, "contour_ring_cells", self.contour_ring_cells, at_least_zero),
            (
                self.min_agglomeration_population >= 0,
                "min_agglomeration_population",
                self.min_agglomeration_population,
                at_least_zero,
            ),
            (
                self.contiguity in CONTIGUITIES,
                "contiguity",
                shlex.quote(self.contiguity),
                f"attendu {one_of(CONTIGUITIES)}",
            ),
        ]
        for ok, name, value, expected in checks:
            if not ok:  # the value as the command line reads it: 1.5, 1000000, diagonal
                raise RuleError(f"règle {self.name} : {name} {value} ; {expected}")

    def with_params(self, **changes: object) -> Rule:
        """A copy with some parameters changed (``None`` values are ignored)."""
        given: dict[str, Any] = {k: v for k, v in changes.items() if v is not None}
        unknown = set(given) - {f.name for f in fields(self)}
        if unknown:
            what = "paramètres inconnus" if len(unknown) > 1 else "paramètre inconnu"
            raise RuleError(
                f"règle {self.name} : {what} {', '.join(sorted(unknown))} ; "
                f"attendu {one_of(f.name for f in fields(self) if f.name not in ('name', 'description'))}"
            )
        return replace(self, **given)

    def params(self) -> dict[str, object]:
        """Every parameter, for the run manifest."""
        return asdict(self)

    @property
    def needs_national_median(self) -> bool:
        """Whether the threshold uses the national median."""
        return self.national_weight > 0 or self.large_agglomeration_national_weight > 0

    def threshold(
        self,
        agglomeration_median: float,
        agglomeration_population: float,
        national_median: float | None = None,
        fraction: float | None = None,
    ) -> Threshold:
        """Compute the income threshold.

        Parameters
        ----------
        agglomeration_median : float
            Median income of the unité urbaine.
        agglomeration_population : float
            Its population (chooses the weights at 5 million).
        national_median : float, optional
            National median; required when the rule weighs it.
        fraction : float, optional
            Fraction to apply instead of ``threshold_fraction`` (the income bridge passes the
            disposable-income equivalent of the declared-income fraction).

        Examples
        --------
        >>> r = RULES["decree-2014"]
        >>> r.threshold(20_000, 300_000, national_median=22_040).value   # 0.6 × 21428 = 12856.8
        12900.0
        >>> r.threshold(20_000, 6_000_000, national_median=22_040).national_weight
        0.3
        """
        weight = self.national_weight
        if agglomeration_population >= self.large_agglomeration_population:
            weight = self.large_agglomeration_national_weight
        if weight > 0 and national_median is None:
            raise RuleError(
                f"règle {self.name} : médiane nationale manquante ; attendu --national-median "
                "(revenu médian national, en € par an)"
            )
        national = 0.0 if national_median is None else float(national_median)
        reference = weight * national + (1 - weight) * float(agglomeration_median)
        fraction = self.threshold_fraction if fraction is None else fraction
        unrounded = fraction * reference
        value = _round_up(unrounded, self.round_up_to)
        return Threshold(
            national_median=national_median,
            agglomeration_median=float(agglomeration_median),
            agglomeration_population=float(agglomeration_population),
            national_weight=weight,
            reference_median=reference,
            fraction=fraction,
            unrounded=unrounded,
            value=value,
        )


def _round_up(value: float, step: int) -> float:
    if step == 0:
        return float(value)
    # a tolerance keeps 12800.000000001 (float noise) at 12800
    return float(math.ceil(value / step - 1e-9) * step)


RULES: dict[str, Rule] = {
    rule.name: rule
    for rule in (
        Rule(
            name="seed",
            description="Amiens contrat de ville wording: more than 50 % of residents below 60 % of "
            "the agglomeration median; no national weight, no rounding",
            national_weight=0.0,
            large_agglomeration_national_weight=0.0,
            round_up_to=0,
        ),
        Rule(
            name="decree-2014",
            description="Décret n°2014-767 art. 2 and 4: S = 0.6 × (0.7 × national + 0.3 × UU median), "
            "weights swapped from 5 million inhabitants, rounded up to 100 €; ≥ 1,000 residents "
            "counted on the drawn contour (one-cell ring, art. 3); queen contiguity; UU ≥ 10,000 inhabitants",
            # structural choices of the method calibrated on the validation cities (issue #11)
            contiguity="queen",
            contour_ring_cells=1,
        ),
    )
}


def get_rule(name: str | Rule) -> Rule:
    """Look a rule version up by name.

    Examples
    --------
    >>> get_rule("seed").national_weight
    0.0
    """
    if isinstance(name, Rule):
        return name
    try:
        return RULES[name]
    except KeyError:
        raise RuleError(f"règle {shlex.quote(name)} inconnue ; attendu {one_of(RULES)}") from None
