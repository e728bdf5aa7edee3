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

POPULATION, GENERATIONS, PARENT_RATIO, MUTATION_RATIO, MUTATE_PROB = 100, 500, 0.25, 0.5, 0.1
MAX_TRIES = 10000


def evolution_oracle(config, population: int = POPULATION, generations: int = GENERATIONS) -> dict:
    from search.middleware import measure_functions
    from spaces.ofa_mbv3 import OFAArch, make_arch
    config, parts = search_config.resolve(config)
    space = parts.space
    if space.name != "ofa_mbv3":
        raise SearchError(f"--oracle runs OFA's evolution, which needs the ofa_mbv3 space, not {space.name}")
    evaluator = parts.evaluator_class(space, parts.evaluator_config)
    limits = config.strategy.constraints
    measures = measure_functions(space, limits, evaluator)
    rng = np.random.default_rng(config.seed)
    start = time.time()
    fitness: dict[str, float] = {}

    def feasible(arch: OFAArch) -> bool:
        return all(measures[n](arch) <= v for n, v in limits.items())

    def draw(make) -> OFAArch:
        for _ in range(MAX_TRIES):
            arch = make()
            if feasible(arch):
                return arch
        raise SearchError(f"the oracle found no arch within {limits} in {MAX_TRIES} tries")

    def score(arch: OFAArch) -> float:
        key = space.key(arch)
        if key not in fitness:
            fitness[key] = float(evaluator.evaluate(space.to_json(arch))["val"])
        return fitness[key]

    def crossover(a: OFAArch, b: OFAArch) -> OFAArch:
        pick = lambda x, y: [u if rng.random() < 0.5 else v for u, v in zip(x, y)]
        return make_arch(pick(a.ks, b.ks), pick(a.e, b.e), pick(a.d, b.d), a.r if rng.random() < 0.5 else b.r,
                         space.resolutions)

    pop = [draw(lambda: space.sample(rng)) for _ in range(population)]
    calls = population
    n_parents, n_mutants = int(round(PARENT_RATIO * population)), int(round(MUTATION_RATIO * population))
    best_curve = []
    for _ in range(generations):
        ranked = sorted(pop, key=score, reverse=True)
        parents = ranked[:n_parents]
        best_curve.append(score(parents[0]))
        children = [draw(lambda: space.mutate(parents[int(rng.integers(n_parents))], rng, MUTATE_PROB))
                    for _ in range(n_mutants)]
        children += [draw(lambda: crossover(parents[int(rng.integers(n_parents))], parents[int(rng.integers(n_parents))]))
                     for _ in range(population - n_parents - n_mutants)]
        calls += len(children)
        pop = parents + children
    best = max(pop, key=score)
    out = {"best_key": space.key(best), "best_val": score(best), "best_arch": space.to_json(best),
           "evaluations": calls, "distinct_evaluations": len(fitness), "population": population,
           "generations": generations, "wall_seconds": round(time.time() - start, 1),
           "curve_per_generation": best_curve[:: max(1, generations // 50)]}
    for name, fn in measures.items():
        out[f"best_{name}"] = float(fn(best))
    return out
