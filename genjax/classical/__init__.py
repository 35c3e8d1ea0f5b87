"""Classical classifiers as pure, jitted fit / predict functions (and thin estimator classes)."""
