"""OFA's evolutionary search (its ``EvolutionFinder``) over any fitness that scores a batch of
archs: the oracle of ``bench.search`` runs it on the evaluator itself, the ``narformer``
strategy's ``proposal="evolution"`` on its predictor (as NAR-Former's MobileNet search does).

A population of feasible archs; each generation keeps the best ``parent_ratio`` of it and
refills it with mutants (``mutation_ratio``) and crossovers of two parents (where the space
has ``crossover``; otherwise mutants), each drawn until ``admissible`` accepts it (a rejected
draw is mutated further for a few steps before the next fresh draw).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Sequence

from .errors import SearchError


@dataclass
class EvolutionSettings:
    population: int = 100
    generations: int = 500
    parent_ratio: float = 0.25
    mutation_ratio: float = 0.5
    max_tries: int = 10000  # draws per new member before giving up

    def validate(self):
        if self.population < 2 or self.generations < 0:
            raise SearchError(f"evolution needs population >= 2 and generations >= 0, got {self.population} "
                              f"and {self.generations}")
        if not (0 < self.parent_ratio <= 1 and 0 <= self.mutation_ratio and self.parent_ratio + self.mutation_ratio <= 1):
            raise SearchError("evolution needs 0 < parent_ratio <= 1 and parent_ratio + mutation_ratio <= 1")
        return self


class Evolution:
    """``score(archs) -> values`` is called once per generation with the new members only;
    every scored arch is remembered (``scored``: key -> (arch, value))."""

    def __init__(self, space, score: Callable[[list], Sequence[float]], admissible: Callable[[str, object], bool],
                 rng, settings: EvolutionSettings | None = None, describe: str = "the constraints"):
        self.space, self.score_batch, self.admissible, self.rng = space, score, admissible, rng
        self.settings = (settings or EvolutionSettings()).validate()
        self.describe = describe
        self.scored: dict[str, tuple] = {}
        self.curve: list[float] = []  # the best value of each generation
        self.queries = 0  # members drawn and looked up (repeats included), as OFA counts them

    def _draw(self, make, walk: int = 10) -> tuple:
        """An admissible arch from ``make()``; a rejected one is mutated further for up to
        ``walk`` steps before ``make()`` is called again, so a neighbourhood the search has
        already used up (or a constraint's edge) does not stall the evolution."""
        arch = None
        for attempt in range(self.settings.max_tries):
            arch = make() if attempt % walk == 0 else self.space.mutate(arch, self.rng)
            key = str(self.space.key(arch))
            if self.admissible(key, arch):
                return key, arch
        raise SearchError(f"evolution found no new arch within {self.describe} in {self.settings.max_tries} tries")

    def _add(self, members: list[tuple]) -> None:
        self.queries += len(members)
        new = [(k, a) for k, a in dict(members).items() if k not in self.scored]
        if new:
            values = self.score_batch([a for _, a in new])
            for (k, a), v in zip(new, values):
                self.scored[k] = (a, float(v))

    def run(self, seeds: Sequence[tuple] = ()) -> list[tuple]:
        """Evolve from ``seeds`` ((key, arch, value) triples, e.g. archs already evaluated; they
        are not re-scored) filled up with random admissible samples; the final population as
        (key, arch, value), best first."""
        cfg, rng, space = self.settings, self.rng, self.space
        for key, arch, value in seeds:
            self.scored[key] = (arch, float(value))
        ranked_seeds = sorted(seeds, key=lambda s: -s[2])[:cfg.population]
        population = [k for k, _, _ in ranked_seeds]
        fill = [self._draw(lambda: space.sample(rng)) for _ in range(cfg.population - len(population))]
        self._add(fill)
        population += [k for k, _ in fill]
        n_parents = max(1, int(round(cfg.parent_ratio * cfg.population)))
        n_mutants = int(round(cfg.mutation_ratio * cfg.population))
        can_cross = hasattr(space, "crossover")
        for _ in range(cfg.generations):
            parents = sorted(dict.fromkeys(population), key=lambda k: -self.scored[k][1])[:n_parents]
            self.curve.append(self.scored[parents[0]][1])
            parent = lambda: self.scored[parents[int(rng.integers(len(parents)))]][0]
            children = [self._draw(lambda: space.mutate(parent(), rng)) for _ in range(n_mutants)]
            for _ in range(cfg.population - len(parents) - n_mutants):
                make = (lambda: space.crossover(parent(), parent(), rng)) if can_cross else \
                    (lambda: space.mutate(parent(), rng))
                children.append(self._draw(make))
            self._add(children)
            population = parents + [k for k, _ in children]
        final = sorted(dict.fromkeys(population), key=lambda k: -self.scored[k][1])
        return [(k, *self.scored[k]) for k in final]
