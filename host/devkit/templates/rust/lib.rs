//! {{name}}: the action's source. `wasmflow build` turns it into {{name}}.wasm
//! (it needs `rustup target add wasm32-wasip2`).

wit_bindgen::generate!({ world: "action", path: "wit", generate_all });

use wasmflow::action::log::{write, Level};
use wasmflow::action::types::Error;

struct Action;

impl Guest for Action {
    fn run(request: Request) -> Result<Greeting, Error> {
        if request.name.is_empty() {
            return Err(Error {
                code: "invalid-input".into(),
                message: "name must not be empty".into(),
                retryable: false,
                details: Some(r#"{"field":"name"}"#.into()),
            });
        }
        write(Level::Info, &format!("greeting {}", request.name));
        let message = format!("Hello, {}{}", request.name, if request.excited { "!" } else { "." });
        Ok(Greeting { length: message.len() as u32, message })
    }
}

export!(Action);
