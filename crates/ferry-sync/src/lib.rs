//! Sync engine: phases, waves, hooks, apply and prune.
