//! Authentication: passwords (argon2id), access tokens (JWT), refresh sessions,
//! partner API keys, one-time codes and login rate limits.

pub mod api_keys;
pub mod codes;
pub mod identifier;
pub mod passwords;
pub mod rate_limit;
pub mod secrets;
pub mod sessions;
pub mod throttle;
pub mod tokens;
pub mod webview;
