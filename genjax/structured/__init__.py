"""Structured models: HMMs, linear-chain CRFs, RBMs and Bayesian-network classifiers."""
