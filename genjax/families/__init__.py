"""Model families: each module is one family of the contract in genjax.family."""
