//! The application layer: use cases over the ports. Each function is what one request (or, later,
//! one tick of a worker) does, step by step: it takes domain values already parsed, calls ports,
//! applies domain rules, and returns domain values or the port's error enum.
//!
//! Layer rule: depends on `domain` and `ports` only (the purity check proves it). No HTTP, no SQL,
//! no framework: the HTTP adapter parses, calls a use case here, and maps its answer.
#![forbid(unsafe_code)]

pub mod alerts;
pub mod devices;
pub mod evaluator;
pub mod events;
pub mod groups;
pub mod idempotency;
pub mod readings;
pub mod windows;

/// How often a create retries after its generated slug collided with an existing one.
pub const GENERATED_SLUG_ATTEMPTS: usize = 3;

/// 32 random bits for a generated slug.
fn random_u32() -> u32 {
    let bytes = uuid::Uuid::new_v4().into_bytes();
    u32::from_be_bytes([bytes[0], bytes[1], bytes[2], bytes[3]])
}

/// Runs `attempt` with a freshly generated slug while the store says that slug is taken, at most
/// [`GENERATED_SLUG_ATTEMPTS`] times; the last answer is returned as it is.
async fn with_generated_slug<S, T, E, F, Fut>(
    generate: impl Fn(u32) -> S,
    is_taken: impl Fn(&E) -> bool,
    mut attempt: F,
) -> Result<T, E>
where
    F: FnMut(S) -> Fut,
    Fut: std::future::Future<Output = Result<T, E>>,
{
    let mut attempts = 0;
    loop {
        attempts += 1;
        match attempt(generate(random_u32())).await {
            Err(e) if is_taken(&e) && attempts < GENERATED_SLUG_ATTEMPTS => {}
            answer => return answer,
        }
    }
}
