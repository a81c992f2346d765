//! The fs source driver (work in progress).
