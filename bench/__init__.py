"""Benchmark commands: they measure predictors and searches on the tabular benchmarks and
write the JSON files the docs' tables quote. They sit above the library packages
(spaces, predictor, search) and use only their public interfaces.

  python -m bench.predictors   fit a predictor on N benchmark archs, rank the rest
  python -m bench.table        the docs' predictor table from bench.predictors JSON files
  python -m bench.search       strategies x seeds on a benchmark table
"""
