"""Learning from labelled examples: the corpus, and training the learned layer from it.

Not part of the pure engine (``bot.policy``): this package reads files and uses scikit-learn.
What it produces is plain data that ``bot.policy_files`` loads into ``bot.policy.learned``.
"""
