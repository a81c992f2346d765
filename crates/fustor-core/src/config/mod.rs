//! Configuration model and YAML loading (work in progress).
