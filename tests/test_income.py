import numpy as np
import pytest
from scipy.special import ndtr

from carroyage import IncomeModel, read_grid
from carroyage.engine.income import (
    _fit_sigma,
    cell_distributions,
    equivalent_fraction,
    household_sizes,
    pooled_medians,
    share_below,
)


def test_national_spread_and_bridge_come_from_national_figures():
    model = IncomeModel()
    # median 22040, D1 11660 -> sigma = ln(22040/11660) / 1.2816
    assert model.national_sigma == pytest.approx(np.log(22_040 / 11_660) / 1.281552, rel=1e-5)
    assert 0.6 < model.bridge_exponent < 0.9
    assert equivalent_fraction(0.6, "disposable", model) == pytest.approx(0.6**model.bridge_exponent)
    assert equivalent_fraction(0.6, "declared", model) == 0.6


def test_sigma_fit_recovers_a_known_lognormal():
    rng = np.random.default_rng(0)
    sigma = rng.uniform(0.25, 0.9, 200)
    mu = rng.uniform(9.3, 10.3, 200)
    mean = np.exp(mu + sigma**2 / 2)
    line = 13_224.0
    share = ndtr((np.log(line) - mu) / sigma)
    fitted = _fit_sigma(mean, share, line, default=0.5)
    usable = share < 0.5 + 1e-9  # the positive root is the true one when the mean is above the line
    assert np.allclose(fitted[usable & (mean > line)], sigma[usable & (mean > line)], rtol=1e-6)


def test_household_sizes_recover_sizes_and_fall_back():
    rng = np.random.default_rng(2)
    households = rng.uniform(20, 200, 300)
    poor = households * rng.uniform(0, 0.6, 300)
    population = 2.8 * poor + 1.8 * (households - poor)
    assert household_sizes(population, households, poor) == pytest.approx((2.8, 1.8))
    # every cell with the same poor share: sizes cannot be told apart
    same = household_sizes(households * 2, households, households * 0.2)
    assert same == pytest.approx((2.0, 2.0))


def test_pooled_median_of_one_lognormal_and_of_a_mixture():
    mu = np.array([np.log(10_000.0), np.log(30_000.0), np.log(20_000.0)])
    sigma = np.array([0.4, 0.4, 0.5])
    population = np.array([100.0, 100.0, 50.0])
    medians = pooled_medians(mu, sigma, population, np.array([0, 0, 1]), 2)
    assert medians[1] == pytest.approx(20_000, rel=1e-5)
    # symmetric mixture of two log-normals around sqrt(1e4 × 3e4)
    assert medians[0] == pytest.approx(np.sqrt(1e4 * 3e4), rel=1e-5)
    assert share_below(mu[:1], sigma[:1], 10_000.0)[0] == pytest.approx(0.5)


def test_estimated_shares_on_real_amiens_grid_rank_poor_cells_first(tmp_path):
    from carroyage.data import AMIENS_2019
    from carroyage.engine.income import cell_income

    cells = read_grid(AMIENS_2019)
    income = cell_income(cells, cell_distributions(cells, IncomeModel()), 14_500.0)
    frame = cells.frame
    poverty = frame["poor_households"] / frame["households"]
    # cells where most households are poor must come out mostly low-income, well-off ones not
    assert income.low_share[poverty.to_numpy() > 0.5].mean() > 0.5
    assert income.low_share[poverty.to_numpy() < 0.05].mean() < 0.2
    assert income.estimated
    facts = income.facts
    assert facts["residents_per_poor_household"] > facts["residents_per_other_household"] >= 1


@pytest.mark.parametrize("chunk", [1, 7, 1 << 17])
def test_window_sums_match_a_plain_loop_over_the_offsets_to_the_last_bit(chunk):
    from carroyage.engine.grid import Grid
    from carroyage.engine.income import _window_sums

    rng = np.random.default_rng(3)
    flat = rng.choice(40 * 30, size=500, replace=False)  # distinct cells of a 40 x 30 frame, shuffled
    grid = Grid.around(flat % 40 * 200, flat // 40 * 200, 200)
    values = rng.random((500, 3)) * 1_000
    reach, bandwidth = 2, 1.25
    height, width = grid.shape
    raster = np.zeros((height + 2 * reach, width + 2 * reach, 3))
    raster[grid.row + reach, grid.col + reach] = values
    expected = np.zeros((500, 3))
    for d_row in range(-reach, reach + 1):  # the window's order: row offsets, then column offsets
        for d_col in range(-reach, reach + 1):
            if (d_row, d_col) != (0, 0):
                weight = np.exp(-(d_row**2 + d_col**2) / (2 * bandwidth * bandwidth))
                expected += weight * raster[grid.row + reach + d_row, grid.col + reach + d_col]
    sums = _window_sums(grid, values, reach, bandwidth, chunk=chunk)
    assert np.array_equal(sums, expected)
