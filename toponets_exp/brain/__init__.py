"""Brain-likeness measures, each a function of arrays (responses, weights, maps on the sheet): dimensionality,
topographic smoothness, selectivity, predictivity, language selectivity, integration windows, sheet block pooling,
BLiMP accuracy; the TDANN measures also at units' explicit positions (mm); and their plots."""

from toponets_exp.brain.blimp import blimp_accuracy, load_blimp
from toponets_exp.brain.correlation_windows import correlation_smoothness_at, correlation_windows_at
from toponets_exp.brain.dimensionality import effective_dimensionality
from toponets_exp.brain.efficiency import block_pool
from toponets_exp.brain.integration import IntegrationResult, integration_windows
from toponets_exp.brain.language import LanguageSelectivity, embedded_sentences, language_selectivity, make_nonwords
from toponets_exp.brain.plots import plot_bar, plot_curves, plot_sheet_map
from toponets_exp.brain.position_plots import plot_position_maps
from toponets_exp.brain.sheet_plots import plot_selectivity_maps, plot_weight_sheet
from toponets_exp.brain.similarity_plot import plot_similarity_curves
from toponets_exp.brain.predictivity import PredictivityResult, ridge_predictivity
from toponets_exp.brain.selectivity import SelectivityMap, selectivity_map
from toponets_exp.brain.smoothness import (SimilarityCurve, SmoothnessResult, response_profiles,
                                           similarity_by_distance, smoothness)
from toponets_exp.brain.map_statistics import map_pearson, map_ssim, morans_i
from toponets_exp.brain.patches import Patch, find_patches_at
from toponets_exp.brain.tdann import tdann_curves_at, tdann_smoothness, tdann_smoothness_at
from toponets_exp.brain.stats import benjamini_hochberg, d_prime, welch_t, welch_t_pvalues
