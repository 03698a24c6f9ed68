//! Infrastructure shared by the domain modules: Redis connections, the clock, metrics and
//! the log/trace subscriber.

pub mod clock;
pub mod metrics;
pub mod redis;
pub mod telemetry;
