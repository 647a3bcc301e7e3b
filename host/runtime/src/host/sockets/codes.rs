//! WASI's socket error codes by name, as events record them.

use wasmtime_wasi::p2::bindings::sockets::network::ErrorCode;

/// WASI's names for its socket error codes, as recorded.
const ERROR_CODES: [(ErrorCode, &str); 21] = [
    (ErrorCode::Unknown, "unknown"),
    (ErrorCode::AccessDenied, "access-denied"),
    (ErrorCode::NotSupported, "not-supported"),
    (ErrorCode::InvalidArgument, "invalid-argument"),
    (ErrorCode::OutOfMemory, "out-of-memory"),
    (ErrorCode::Timeout, "timeout"),
    (ErrorCode::ConcurrencyConflict, "concurrency-conflict"),
    (ErrorCode::NotInProgress, "not-in-progress"),
    (ErrorCode::WouldBlock, "would-block"),
    (ErrorCode::InvalidState, "invalid-state"),
    (ErrorCode::NewSocketLimit, "new-socket-limit"),
    (ErrorCode::AddressNotBindable, "address-not-bindable"),
    (ErrorCode::AddressInUse, "address-in-use"),
    (ErrorCode::RemoteUnreachable, "remote-unreachable"),
    (ErrorCode::ConnectionRefused, "connection-refused"),
    (ErrorCode::ConnectionReset, "connection-reset"),
    (ErrorCode::ConnectionAborted, "connection-aborted"),
    (ErrorCode::DatagramTooLarge, "datagram-too-large"),
    (ErrorCode::NameUnresolvable, "name-unresolvable"),
    (
        ErrorCode::TemporaryResolverFailure,
        "temporary-resolver-failure",
    ),
    (
        ErrorCode::PermanentResolverFailure,
        "permanent-resolver-failure",
    ),
];

pub(super) fn error_name(code: ErrorCode) -> &'static str {
    ERROR_CODES
        .iter()
        .find(|(c, _)| *c == code)
        .map_or("unknown", |(_, n)| n)
}

/// A recorded error code back; a tape naming an unknown one is corrupt.
pub(super) fn error_code(name: &str) -> wasmtime::Result<ErrorCode> {
    ERROR_CODES
        .iter()
        .find(|(_, n)| *n == name)
        .map(|(c, _)| *c)
        .ok_or_else(|| {
            wasmtime::format_err!("recorded socket error `{name}` is not a WASI error code")
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_codes_round_trip_by_name() {
        for (code, name) in ERROR_CODES {
            assert_eq!(error_name(code), name);
            assert_eq!(error_code(name).unwrap(), code);
        }
        assert!(error_code("no-such-code").is_err());
    }
}
