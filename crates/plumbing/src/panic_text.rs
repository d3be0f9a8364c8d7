//! The text a panic carries, for the one line that reports it. Both the
//! log's panic hook and the crucial threads' report need it, so it sits
//! below both.

use std::any::Any;

/// The text a panic was raised with, when it has one.
pub fn panic_message(payload: &(dyn Any + Send)) -> &str {
    if let Some(s) = payload.downcast_ref::<&'static str>() {
        s
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s
    } else {
        "panicked"
    }
}
