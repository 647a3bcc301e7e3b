//! `wasmflow key set|get|list|delete|load|rotate`: the datastore's keys
//! (`wasmflow_datastore`), printed.

use crate::args::KeyCommand;
use crate::{print, CmdResult, Fail, Home};
use anyhow::anyhow;
use std::io::Read;
use std::process::ExitCode;
use wasmflow_datastore::Datastore;

/// The datastore of this home's store, with the secret key in
/// `WASMFLOW_SECRET_KEY_FILE` or `$WASMFLOW_HOME/secret.key`.
pub fn datastore(home: &Home) -> Result<Datastore, Fail> {
    let book = wasmflow_store::key_book(&home.store_location())?;
    Ok(Datastore::new(book, secret_key_file(home)))
}

pub fn secret_key_file(home: &Home) -> std::path::PathBuf {
    std::env::var_os("WASMFLOW_SECRET_KEY_FILE")
        .filter(|p| !p.is_empty())
        .map(Into::into)
        .unwrap_or_else(|| home.dir.join("secret.key"))
}

pub fn key(home: &Home, command: KeyCommand) -> CmdResult {
    let ds = datastore(home)?;
    match command {
        KeyCommand::Set {
            name,
            value,
            ttl,
            secret,
        } => {
            // `-`: from stdin, so a secret stays out of shell history and `ps`.
            let value = match value.as_str() {
                "-" => {
                    let mut s = String::new();
                    std::io::stdin()
                        .read_to_string(&mut s)
                        .map_err(|e| Fail::usage(anyhow!("reading the value from stdin: {e}")))?;
                    s.strip_suffix('\n').map(str::to_owned).unwrap_or(s)
                }
                _ => value,
            };
            let ttl = ttl
                .map(|t| {
                    crate::units::parse_duration("--ttl", &t).map_err(|e| Fail::usage(anyhow!(e)))
                })
                .transpose()?;
            ds.set(&name, &value, secret, ttl)?;
        }
        KeyCommand::Get {
            name,
            decrypt,
            json,
        } => {
            let key = ds
                .get(&name, decrypt)?
                .ok_or_else(|| Fail::usage(anyhow!("no key `{name}` (expired, or never set)")))?;
            if json {
                print::json(&key);
            } else {
                println!("{}", key.value);
            }
        }
        KeyCommand::List { prefix, json } => {
            let keys = ds.list(&prefix)?;
            if json {
                print::json(&keys);
                return Ok(ExitCode::SUCCESS);
            }
            let mut table = comfy_table::Table::new();
            table.load_preset(comfy_table::presets::NOTHING);
            table.set_header(["NAME", "VALUE", "SECRET", "EXPIRES"]);
            for k in keys {
                table.add_row([
                    k.name,
                    k.value,
                    if k.secret { "yes" } else { "" }.to_owned(),
                    k.expires_at.unwrap_or_default(),
                ]);
            }
            println!("{table}");
        }
        KeyCommand::Delete { name } => {
            if !ds.delete(&name)? {
                return Err(Fail::usage(anyhow!("no key `{name}`")));
            }
        }
        KeyCommand::Load { file } => {
            let text = std::fs::read_to_string(&file)
                .map_err(|e| Fail::usage(anyhow!("cannot read {}: {e}", file.display())))?;
            let n = ds
                .load_text(&text)
                .map_err(|e| Fail::usage(anyhow!("{}: {e}", file.display())))?;
            eprintln!("{n} keys set from {}", file.display());
        }
        KeyCommand::Rotate => {
            let n = ds.rotate()?;
            eprintln!(
                "{n} secrets re-encrypted under a new key in {}",
                ds.secret_key_path().display()
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}
