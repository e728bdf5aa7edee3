"""arch2vec: unsupervised embeddings of architectures (a variational graph autoencoder
pretrained on a space's cells), the ``arch2vec`` predictor on frozen embeddings, and the
input-output extension trained on what networks compute.

It sits above ``spaces`` (pretraining enumerates or samples a space) and ``predictor`` (the
predictor interface); the ``arch2vec`` predictor reaches ``predictor``'s registry as an
installed plugin (setup.cfg's ``narnas.plugins``). ``python -m embeddings`` is its command;
the input-output dataset is built by ``python -m search.io_data``, where trainings run.
"""
