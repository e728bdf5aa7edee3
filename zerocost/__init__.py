"""Zero-cost proxies: how good an untrained network looks on one minibatch.

* :mod:`zerocost.proxies` - each proxy's definition, with its paper, and the shared passes;
* :mod:`zerocost.batch` - the fixed, seeded minibatch of a space's dataset;
* :mod:`zerocost.store` - the proxies of many architectures, computed once and cached in an
  append-only file (a resumable batch job); ``python -m zerocost`` is its command.

It sits above ``spaces`` (it builds their networks) and ``training`` (their datasets);
``search`` ranks and warm-starts with it, and feeds its values to predictors as per-graph
features, which is how a predictor sees proxies without importing them.
"""
