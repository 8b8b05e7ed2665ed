//! Placeholder for the HTTPS server (next commit).
