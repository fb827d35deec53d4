//! A `ProxyCommand` as ssh runs it: `exec ` before the command (so no shell lingers), then the
//! tokens ssh expands there: `%h` (HostName), `%n` (the name typed), `%p`, `%r` (the remote
//! user), `%k` (HostKeyAlias, else the name typed) and `%%`. Any other token is an error, as in
//! ssh (`percent_expand: unknown key %u`).

use std::path::Path;

use super::ResolveError;
use crate::config::ProxyCommand;
use crate::ssh_config::HostConfig;

/// The command ssh would run for `command` on host `c`, with the shell that runs it.
pub fn expand_proxy_command(
    command: &str,
    c: &HostConfig,
    shell: &Path,
) -> Result<ProxyCommand, ResolveError> {
    let alias = c
        .options
        .host_key_alias
        .clone()
        .unwrap_or_else(|| c.original_host.clone());
    let mut out = String::from("exec ");
    let mut chars = command.chars();
    while let Some(ch) = chars.next() {
        if ch != '%' {
            out.push(ch);
            continue;
        }
        match chars.next() {
            Some('%') => out.push('%'),
            Some('h') => out.push_str(&c.host_name),
            Some('n') => out.push_str(&c.original_host),
            Some('p') => out.push_str(&c.port.to_string()),
            Some('r') => out.push_str(&c.user),
            Some('k') => out.push_str(&alias),
            Some(other) => {
                return Err(ResolveError::Invalid(format!(
                    "ProxyCommand {command}: unknown token %{other} (ProxyCommand accepts %h, %n, %p, %r, %k and %%)"
                )))
            }
            None => {
                return Err(ResolveError::Invalid(format!(
                    "ProxyCommand {command}: a lone % at the end (write %% for a literal %)"
                )))
            }
        }
    }
    Ok(ProxyCommand {
        configured: command.to_string(),
        command: out,
        shell: shell.to_path_buf(),
    })
}
