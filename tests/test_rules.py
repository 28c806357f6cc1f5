import pytest

from carroyage import RULES, RuleError, get_rule
from carroyage.settings import MAX_GAP_FILL_CELLS


def test_decree_threshold_rounds_up_to_next_100():
    rule = RULES["decree-2014"]
    # 0.6 × (0.7 × 22040 + 0.3 × 20000) = 0.6 × 21428 = 12856.8 -> 12900
    t = rule.threshold(20_000, 300_000, national_median=22_040)
    assert t.unrounded == pytest.approx(12_856.8)
    assert t.value == 12_900


def test_exact_multiple_of_100_is_not_rounded_further():
    # 0.6 × (0.7 × 20000 + 0.3 × 20000) = 12000 exactly
    assert RULES["decree-2014"].threshold(20_000, 300_000, national_median=20_000).value == 12_000


def test_weights_swap_at_five_million():
    rule = RULES["decree-2014"]
    below = rule.threshold(30_000, 4_999_999, national_median=20_000)
    above = rule.threshold(30_000, 5_000_000, national_median=20_000)
    assert below.national_weight == 0.7 and above.national_weight == 0.3
    assert below.value == 13_800  # 0.6 × (0.7 × 20000 + 0.3 × 30000)
    assert above.value == 16_200  # 0.6 × (0.3 × 20000 + 0.7 × 30000)


def test_seed_is_sixty_percent_of_the_agglomeration_median_unrounded():
    t = RULES["seed"].threshold(18_944.5, 100_000)
    assert t.value == pytest.approx(0.6 * 18_944.5)


def test_decree_needs_national_median():
    with pytest.raises(RuleError, match="règle decree-2014 : médiane nationale manquante ; attendu --national-median"):
        RULES["decree-2014"].threshold(20_000, 100_000)


def test_parameters_are_validated_and_visible():
    rule = get_rule("decree-2014").with_params(contiguity="queen", min_population=500)
    assert rule.params()["contiguity"] == "queen" and rule.params()["min_population"] == 500
    with pytest.raises(RuleError, match="règle seed : contiguity bishop ; attendu rook ou queen"):
        get_rule("seed").with_params(contiguity="bishop")
    with pytest.raises(RuleError, match="règle decree-2099 inconnue ; attendu seed ou decree-2014"):
        get_rule("decree-2099")


@pytest.mark.parametrize(
    "changes,expected",
    [
        ({"threshold_fraction": 1.5}, "threshold_fraction 1.5 ; attendu un nombre strictement entre 0 et 1"),
        ({"national_weight": -0.1}, "national_weight -0.1 ; attendu un nombre de 0 à 1"),
        ({"min_population": -1}, "min_population -1 ; attendu un nombre supérieur ou égal à 0"),
        (
            {"gap_fill_cells": 1_000_000},
            f"gap_fill_cells (--gap-fill) 1000000 ; attendu un nombre de 0 à {MAX_GAP_FILL_CELLS}",
        ),
        ({"contiguity": "two words"}, "contiguity 'two words' ; attendu rook ou queen"),
        ({"colour": "red"}, "paramètre inconnu colour ; attendu threshold_fraction, national_weight, "),
    ],
)
def test_refused_parameters_are_said_in_french_as_typed(changes, expected):
    with pytest.raises(RuleError) as refused:
        get_rule("decree-2014").with_params(**changes)
    assert str(refused.value).startswith("règle decree-2014 : " + expected), str(refused.value)
