//! Application controller reconciling argoproj.io Applications.
