//! `tunnelkit secret set|delete password USER@HOST[:PORT]` and `... passphrase KEYFILE`: the
//! OS keyring, where tunnelkit looks before it would ask. The secret is read from the terminal
//! without echo, or from standard input when that is not a terminal; never from the command
//! line.

use std::io::{BufRead, IsTerminal};

use tunnelkit_core::error::Chain;
use tunnelkit_core::prompt::SecretString;
use tunnelkit_core::{spec, SecretKey};
use tunnelkit_desktop::secrets::Keyring;

use crate::exit::Exit;
use crate::opts::SecretArgs;

fn key(kind: &str, name: &str) -> Result<SecretKey, String> {
    if kind == "passphrase" {
        let path = std::path::absolute(name).map_err(|e| format!("{name}: {e}"))?;
        return Ok(SecretKey::Passphrase(path));
    }
    let hop = spec::parse_hop(name).map_err(|e| e.to_string())?;
    let user = hop
        .user
        .ok_or_else(|| format!("{name}: expected USER@HOST[:PORT]"))?;
    Ok(SecretKey::Password {
        user,
        host: hop.host,
        port: hop.port.unwrap_or(22),
    })
}

/// `password for admin@bastion:2222`, `passphrase for /home/me/.ssh/id_ed25519`.
fn what(key: &SecretKey) -> String {
    key.entry_name().replacen(':', " for ", 1)
}

fn read_secret(what: &str) -> Result<SecretString, String> {
    let text = if std::io::stdin().is_terminal() {
        rpassword::prompt_password(format!("{what}: ")).map_err(|e| e.to_string())?
    } else {
        let mut line = String::new();
        std::io::stdin()
            .lock()
            .read_line(&mut line)
            .map_err(|e| e.to_string())?;
        line.trim_end_matches(['\r', '\n']).to_string()
    };
    if text.is_empty() {
        return Err("empty secret: nothing stored".into());
    }
    Ok(SecretString::from(text))
}

/// Runs `tunnelkit secret ...`.
pub fn run(args: &SecretArgs) -> Exit {
    let r = (|| -> Result<String, String> {
        let key = key(&args.kind, &args.name)?;
        let keyring = Keyring::from_env().map_err(|e| Chain(&e).to_string())?;
        if args.action == "delete" {
            let place = keyring.backend().place();
            let deleted = keyring.delete(&key).map_err(|e| Chain(&e).to_string())?;
            return Ok(if deleted {
                format!("deleted the {} from {place}", what(&key))
            } else {
                format!("no {} was stored in {place}", what(&key))
            });
        }
        let secret = read_secret(&format!("{} for {}", args.kind, args.name))?;
        keyring
            .set(&key, &secret)
            .map_err(|e| Chain(&e).to_string())?;
        Ok(format!(
            "stored the {} in {}",
            what(&key),
            keyring.backend().place()
        ))
    })();
    match r {
        Ok(m) => {
            println!("{m}");
            Exit::Success
        }
        Err(e) => {
            eprintln!("tunnelkit secret: {e}");
            Exit::Failure
        }
    }
}
