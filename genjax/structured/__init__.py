"""Structured models: hidden Markov models, linear-chain CRFs, RBMs, Bayesian-network classifiers."""
