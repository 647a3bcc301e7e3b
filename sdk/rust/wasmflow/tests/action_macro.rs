//! `#[wasmflow::action]` expands to an implementation of the bindings'
//! `Guest` trait and an `export!` of it. Natively there are no bindings, so
//! this test declares the two things the expansion uses, shaped as
//! wit-bindgen generates them, and calls through the trait.

use wasmflow::{fail, Error};

pub struct Request {
    pub name: String,
    pub excited: bool,
}

pub trait Guest {
    fn run(request: Request) -> Result<String, Error>;
}

macro_rules! export {
    ($t:ident) => {
        const _: fn() = || {
            fn is_guest<T: Guest>() {}
            is_guest::<$t>();
        };
    };
}

#[wasmflow::action]
fn run(request: Request) -> Result<String, Error> {
    if request.name.is_empty() {
        return Err(fail("invalid-input", "name must not be empty"));
    }
    Ok(format!(
        "Hello, {}{}",
        request.name,
        if request.excited { "!" } else { "." }
    ))
}

#[test]
fn the_export_calls_the_function() {
    let ok = <WasmflowAction as Guest>::run(Request {
        name: "Ada".into(),
        excited: true,
    });
    assert_eq!(ok.unwrap(), "Hello, Ada!");
    let err = <WasmflowAction as Guest>::run(Request {
        name: String::new(),
        excited: false,
    })
    .unwrap_err();
    assert_eq!(err.code, "invalid-input");
    // The function stays callable (and testable) by itself.
    assert_eq!(
        run(Request {
            name: "Bo".into(),
            excited: false
        })
        .unwrap(),
        "Hello, Bo."
    );
}
