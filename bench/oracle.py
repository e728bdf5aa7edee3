"""OFA's evolutionary search with the evaluator itself as fitness: the bound a search with a
budget of real evaluations is compared with (``bench.search --oracle``).

As OFA's ``EvolutionFinder``: a population of 100 feasible subnets; each of 500 generations
keeps the best 25 as parents and refills the population with 50 mutants (each gene redrawn
with p = 0.1) and 25 crossovers (each gene from one of two parents), all within the
constraints. Fitness is looked up through the evaluator, thousands of times.
"""
from __future__ import annotations

import time

import numpy as np

from search import config as search_config
from search.errors import SearchError
from search.evolution import Evolution, EvolutionSettings


def evolution_oracle(config, population: int = 100, generations: int = 500) -> dict:
    from search.middleware import measure_functions
    config, parts = search_config.resolve(config)
    space = parts.space
    if space.name != "ofa_mbv3":
        raise SearchError(f"--oracle runs OFA's evolution, which needs the ofa_mbv3 space, not {space.name}")
    evaluator = parts.evaluator_class(space, parts.evaluator_config)
    limits = config.strategy.constraints
    measures = measure_functions(space, limits, evaluator)
    start = time.time()
    score = lambda archs: [float(evaluator.evaluate(space.to_json(a))["val"]) for a in archs]

    feasible = lambda key, arch: all(measures[n](arch) <= v for n, v in limits.items())
    evolution = Evolution(space, score, feasible, np.random.default_rng(config.seed),
                          EvolutionSettings(population=population, generations=generations), describe=str(limits))
    best_key, best, best_val = evolution.run()[0]
    out = {"best_key": best_key, "best_val": best_val, "best_arch": space.to_json(best),
           "evaluations": evolution.queries, "distinct_evaluations": len(evolution.scored), "population": population,
           "generations": generations, "wall_seconds": round(time.time() - start, 1),
           "curve_per_generation": evolution.curve[:: max(1, generations // 50)]}
    for name, fn in measures.items():
        out[f"best_{name}"] = float(fn(best))
    return out
