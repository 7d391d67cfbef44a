//! Cluster live-state cache: discovery, watches, indexes by app and owner.
