"""Predict or abstain: the decision rules and their calibration, in one namespace.

The code lives in two modules, one job each: :mod:`tfuq.runtime.decision` (the rules and
:func:`decide`, what runs on the device) and :mod:`tfuq.runtime.calibration` (SGR,
:func:`calibrate`, offline on labelled data). This module re-exports both for the callers
that import ``abstain`` (scripts, benchmarks, the Android mockup tool).
"""

from tfuq.runtime.calibration import (
    Calibration,
    InfeasibleError,
    OodGuard,
    binomial_cdf,
    binomial_upper_bound,
    calibrate,
    ood_guard,
)
from tfuq.runtime.decision import (
    DEFAULT_FLOOR,
    DEFAULT_RULE,
    HIGHER_IS_CONFIDENT,
    INTERVAL_RULE,
    MAX_PARTS,
    PART_RULES,
    RULES,
    Decision,
    RuleError,
    accept_interval,
    accept_ood,
    accept_threshold,
    all_rule,
    certainty,
    check_rule,
    decide,
    describe_rule,
    interval_rule,
    rule_conf_factor,
    rule_scores,
    threshold_rule,
    with_ood_guard,
)

__all__ = [
    "DEFAULT_FLOOR", "DEFAULT_RULE", "HIGHER_IS_CONFIDENT", "INTERVAL_RULE", "MAX_PARTS",
    "PART_RULES", "RULES", "Calibration", "Decision", "InfeasibleError", "RuleError",
    "accept_interval", "accept_threshold", "all_rule", "binomial_upper_bound", "calibrate",
    "certainty", "check_rule", "decide", "describe_rule", "interval_rule", "rule_conf_factor",
    "threshold_rule", "accept_ood", "rule_scores", "with_ood_guard", "OodGuard", "ood_guard",
    "binomial_cdf",
]
